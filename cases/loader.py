"""Loading and validating case declarations: the schema (keys, types, ranges), the rules that tie keys
together, ``values_file`` arrays, and the catalog of built-in and external declaration files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xentcheck.declarations import TableKind, check, tables
from xentcheck.problem import CATEGORICAL_OPS, MALFORMED
from xentcheck.reference import POLICIES

from .case import Case
from .errors import CaseError
from .schema import case_schema

CATALOG_DIR = Path(__file__).resolve().parent

#: The case categories of the design card; every case names one.
CATEGORIES = (
    "ordinary",
    "extreme logits",
    "soft targets",
    "index vs one-hot",
    "multi-label",
    "zero probabilities",
    "weights",
    "ignore_index",
    "label smoothing",
    "reductions",
    "high-dimensional class layout",
    "-inf masks",
    "NaN/inf inputs",
    "large vocabulary",
    "empty batch",
    "one class",
    "invalid targets",
    "imported",  # vectors with expected values from outside sources (cases/imported/)
    "interactions",  # generated from each binding's capabilities (cases/interactions.py), not declared
)

SCHEMA = case_schema(CATEGORIES)
#: cases from outside the repository (--cases) may file themselves under categories of their own
EXTERNAL_SCHEMA = case_schema(None)
_ARRAYS = ("logits", "probs", "targets")
#: the [[case]] tables of a case file (an explicit values array may hold an infinity or a NaN: inputs)
_CASE_TABLES = TableKind("case", "name", CaseError, "case", arrays_may_hold_inf=True)
#: keys that may hold explicit arrays too ({ values } or { values_file }), given class-last
_EXPLICIT = ("class_weight", "sample_weight", "pos_weight", "where", "cotangent")


def _load_values(spec: dict, key: str, base: Path, where: str, confine: bool = True) -> dict:
    """``spec`` with its ``values_file`` (a .npy file, or FILE.npz:KEY, beside the declaration) read
    into ``values``; a missing or unreadable file, or one that is not real numbers, is one line."""
    if "values_file" not in spec:
        return spec
    if "values" in spec:
        raise CaseError(f"{where}: {key} has both values and values_file; keep one")
    name, _, array = spec["values_file"].partition(":")
    path = base / name
    if confine and not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(base)):
        raise CaseError(
            f"{where}: {key}.values_file {name!r} is outside the declaration's folder {base} (through "
            f"'..', an absolute path or a link); put the file beside the declaration, or pass "
            f"--values-outside"
        )
    if path.exists() and not path.is_file():  # a fifo or a device would block the read
        raise CaseError(f"{where}: {key}.values_file: {path} is not a regular file; save the array with np.save")
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CaseError(
            f"{where}: {key}.values_file: no file {path}; put the .npy/.npz file beside the declaration"
        ) from None
    except (OSError, ValueError) as e:
        raise CaseError(f"{where}: {key}.values_file: {path} is not a NumPy .npy/.npz file ({e})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        if array not in data.files:
            raise CaseError(
                f"{where}: {key}.values_file: name one of the arrays of {name} as {name}:KEY "
                f"(it holds {', '.join(data.files)})"
            )
        try:
            data = data[array]
        except (OSError, ValueError) as e:  # e.g. an object array, which would need pickle: never loaded
            raise CaseError(
                f"{where}: {key}.values_file: {name}:{array} cannot be read without pickle or is "
                f"damaged ({e}); save real numbers with np.savez"
            ) from None
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating) or data.dtype == np.bool_):
        raise CaseError(f"{where}: {key}.values_file: {path} holds {data.dtype}; expected real numbers")
    return {**{k: v for k, v in spec.items() if k != "values_file"}, "values": data}


def _channels_last(spec: dict, shape: tuple[int, ...]) -> dict:
    """Explicit values of a channels-first case are given as the binding receives them, (N, C, d1, ...):
    moved to the canonical class-last layout here."""
    if "values" not in spec:
        return spec
    v = np.asarray(spec["values"])
    if v.shape == (shape[0], shape[-1], *shape[1:-1]):
        v = np.moveaxis(v, 1, -1)
    return {**spec, "values": v}


def _check(entry: dict, where: str, schema: dict = SCHEMA, base: Path | None = None, confine: bool = True) -> Case:
    """A validated case: the schema (keys, types, ranges), then the rules that tie keys together.
    ``base`` is the declaration's folder, where ``values_file`` arrays are read from."""
    check(entry, schema, where, CaseError)
    entry = {
        k: (
            _load_values(v, k, base or CATALOG_DIR, where, confine)
            if k in _ARRAYS or (k in _EXPLICIT and isinstance(v, dict))
            else v
        )
        for k, v in entry.items()
    }
    if "expected" in entry:
        entry["expected"] = {
            **entry["expected"],
            "value": _load_values(entry["expected"]["value"], "expected.value", base or CATALOG_DIR, where, confine),
        }
    kind = entry["targets"].get("kind", "index")
    shape = tuple(entry["shape"])
    if entry.get("channels_first"):
        entry = {
            k: (_channels_last(v, shape) if k in _ARRAYS and not (k == "targets" and kind == "index") else v)
            for k, v in entry.items()
        }
    if (
        kind == "index"
        and "values" in entry["targets"]
        and not np.issubdtype(np.asarray(entry["targets"]["values"]).dtype, np.integer)
    ):
        raise CaseError(f"{where}: targets.values of index targets must be integers (class labels)")
    categorical = [op in CATEGORICAL_OPS for op in entry["ops"]]
    if kind in ("index", "onehot") and not all(categorical):
        raise CaseError(f"{where}: targets.kind {kind!r} needs categorical ops only (softmax_ce, categorical_ce)")
    if kind == "binary" and any(categorical):
        raise CaseError(f"{where}: targets.kind 'binary' needs binary ops only (sigmoid_bce, bce)")
    if "values" in entry["targets"]:
        want = shape[:-1] if kind == "index" else shape
        got = np.shape(entry["targets"]["values"])
        if got != want:
            raise CaseError(
                f"{where}: targets.values has shape {got}, expected {want} for {kind} targets of "
                f"an input of shape {shape}"
            )
    invalid = entry.get("invalid")
    if invalid is not None:
        if ("value" in invalid) == ("form" in invalid):
            raise CaseError(f"{where}: invalid needs either value (with rows) or form (one of {', '.join(MALFORMED)})")
        if "value" in invalid and (kind != "index" or "rows" not in invalid):
            raise CaseError(f"{where}: invalid.value plants a label: it needs index targets and invalid.rows")
        if invalid.get("form") == "float_labels" and kind != "index":
            raise CaseError(f"{where}: invalid.form 'float_labels' needs index targets")
        if invalid.get("form") == "int_targets" and kind == "index":
            raise CaseError(f"{where}: invalid.form 'int_targets' needs dense targets (onehot, binary)")
        if invalid.get("form") == "class_mismatch" and (kind == "index" or not all(categorical)):
            raise CaseError(f"{where}: invalid.form 'class_mismatch' needs dense categorical targets (onehot, soft)")
        if invalid.get("form") == "int_logits" and set(entry["ops"]) - {"softmax_ce", "sigmoid_bce"}:
            raise CaseError(f"{where}: invalid.form 'int_logits' needs logit ops only (softmax_ce, sigmoid_bce)")
        if invalid.get("form") in ("hidden_mismatch", "bias_shape") and entry["ops"] != ["linear_ce"]:
            raise CaseError(
                f"{where}: invalid.form {invalid['form']!r} needs op linear_ce (a classifier W and its bias)"
            )
        if invalid.get("form") == "class_weight_length" and entry.get("class_weight") is None:
            raise CaseError(f"{where}: invalid.form 'class_weight_length' needs class_weight declared")
        if invalid.get("form") == "target_rank" and kind != "index" and shape[-1] != 1:
            raise CaseError(f"{where}: invalid.form 'target_rank' with dense targets needs a last axis of 1")
    if (entry.get("linear") is not None) != ("linear_ce" in entry["ops"]) or (
        "linear_ce" in entry["ops"] and len(entry["ops"]) > 1
    ):
        raise CaseError(
            f"{where}: op linear_ce needs a 'linear' table and is declared alone (a linear table "
            f"applies to op linear_ce only)"
        )
    if entry.get("where") is not None and set(entry["ops"]) != {"softmax_ce"}:
        raise CaseError(f"{where}: where (a class mask, as optax's where=) applies to op softmax_ce only")
    if entry.get("channels_first") and (len(shape) < 3 or not all(categorical)):
        raise CaseError(f"{where}: channels_first needs categorical ops and a spatial shape [N, d1, ..., C]")
    if "nll" in entry["ops"] and kind != "index":
        raise CaseError(f"{where}: op nll takes class indices: targets.kind must be 'index'")
    if "logits" not in entry and "probs" not in entry and "nll" in entry["ops"]:
        raise CaseError(f"{where}: op nll needs 'logits' (log-probabilities as given) or 'probs' (their logs)")
    if "logits" not in entry and set(entry["ops"]) & {"softmax_ce", "sigmoid_bce"}:
        raise CaseError(f"{where}: logit ops need 'logits'")
    _check_ranges(entry, shape, kind, where)
    _check_explicit(entry, shape, categorical, where)
    kw = {k: v for k, v in entry.items() if k != "description"}
    kw["ops"], kw["shape"] = tuple(kw["ops"]), shape
    for key in ("reductions", "dtypes"):
        if key in kw:
            kw[key] = tuple(kw[key])
    case = Case(description=entry.get("description", ""), source=where, **kw)
    try:  # materialise once so that shape or value errors surface at load time, not mid-run
        for op in case.ops:
            p = case.problem(op, case.dtypes[0], case.reductions[0])
    except CaseError as e:
        raise CaseError(f"{where}: {e}") from None
    if case.expected is not None:
        if len(case.reductions) != 1:
            raise CaseError(f"{where}: expected values are of one reduction; declare reductions = [that one]")
        got = np.shape(case.expected["value"]["values"])
        per_row = p.categorical or case.expected.get("mean_last_axis", False)
        want = tuple(p.x.shape[:-1] if per_row else p.x.shape) if p.reduction == "none" else ()
        if got != want:
            raise CaseError(
                f"{where}: expected.value has shape {got}, expected {want} (the loss of reduction "
                f"{p.reduction!r} for an input of shape {tuple(p.x.shape)})"
            )
        _check_expected_extras(case.expected, got, where)
    return case


def _check_expected_extras(expected: dict, shape: tuple[int, ...], where: str) -> None:
    """The source's policies must be oracle policies and its printed decimals one per value (or one)."""
    unknown = sorted(set(expected.get("policies", {})) - set(POLICIES))
    if unknown:
        known = ", ".join(POLICIES)
        raise CaseError(f"{where}: expected.policies names {unknown}, not oracle policies; known: {known}")
    decimals = expected.get("decimals")
    if isinstance(decimals, list) and len(decimals) != int(np.prod(shape)):
        raise CaseError(f"{where}: expected.decimals has {len(decimals)} entries for {int(np.prod(shape))} values")


#: the most elements a declared input may have (the largest built-in case has 256,512): a typo such as
#: [1000000, 1000000] is refused at load instead of exhausting memory mid-run
MAX_ELEMENTS = 50_000_000


def _check_explicit(entry: dict, shape: tuple[int, ...], categorical: list[bool], where: str) -> None:
    """An explicit ``where`` mask and ``cotangent`` against the shape and the other keys."""
    mask = entry.get("where") or {}
    if "values" in mask:
        others = ", ".join(sorted(set(mask) - {"values"}))
        if others:
            raise CaseError(f"{where}: where has values (the mask itself) and {others}; keep one way of giving it")
        got = np.shape(mask["values"])
        if got != shape:
            raise CaseError(f"{where}: where.values has shape {got}, expected the input's shape {shape}")
    cot = entry.get("cotangent")
    if cot is not None:
        if "none" not in entry.get("reductions", ("none", "mean")):
            raise CaseError(
                f"{where}: cotangent is the upstream gradient of the unreduced output: the case needs reduction 'none'"
            )
        if any(categorical) and not all(categorical):
            raise CaseError(f"{where}: cotangent needs ops of one kind (categorical or binary): their outputs differ")
        want = shape[:-1] if all(categorical) else shape
        got = np.shape(cot["values"])
        if got != want:
            raise CaseError(f"{where}: cotangent has shape {got}, expected the unreduced output's {want}")


def _check_ranges(entry: dict, shape: tuple[int, ...], kind: str, where: str) -> None:
    """What the schema cannot see: sizes, rows and columns against ``shape``, ``low <= high``, and
    explicit labels within the classes (an out-of-range label belongs in an ``invalid`` case)."""
    if shape[-1] < 1:
        raise CaseError(f"{where}: shape {list(shape)} has no classes (last axis 0); give at least one class")
    size = int(np.prod(shape, dtype=np.float64))
    if size > MAX_ELEMENTS:
        raise CaseError(
            f"{where}: shape {list(shape)} has {size:.3g} elements, more than {MAX_ELEMENTS:,}; declare a smaller input"
        )
    for key in ("mask", "where", "poison", "invalid"):
        spec = entry.get(key) or {}
        for sub in ("rows", "on_target"):
            bad = [r for r in spec.get(sub, []) if r >= shape[0]]
            if bad:
                raise CaseError(
                    f"{where}: {key}.{sub} names row {bad[0]}, but shape {list(shape)} has {shape[0]} "
                    f"rows (0 to {shape[0] - 1})"
                )
    column = (entry.get("poison") or {}).get("column")
    if column is not None and column >= shape[-1]:
        raise CaseError(f"{where}: poison.column {column} is outside the {shape[-1]} classes (0 to {shape[-1] - 1})")
    for key in ("logits", "probs", "class_weight", "sample_weight", "pos_weight"):
        spec = entry.get(key)
        if isinstance(spec, dict) and "low" in spec and "high" in spec and spec["low"] > spec["high"]:
            raise CaseError(f"{where}: {key}.low = {spec['low']} is above {key}.high = {spec['high']}; swap them")
    total = entry["targets"].get("total")
    if total and total["low"] > total["high"]:
        raise CaseError(f"{where}: targets.total.low is above targets.total.high; swap them")
    values = entry["targets"].get("values")
    if kind == "index" and values is not None and entry.get("invalid") is None:
        labels = np.asarray(values)
        ok = ((labels >= 0) & (labels < shape[-1])) | (labels == entry.get("ignore_index", -(2**63)))
        if labels.size and not ok.all():
            bad = labels[~ok].flat[0]
            raise CaseError(
                f"{where}: targets.values holds label {bad}, outside the {shape[-1]} classes (and not "
                f"ignore_index); an out-of-range label belongs in a case with 'invalid'"
            )


def case_files(specs: list[Path]) -> list[Path]:
    """The declaration files ``--cases`` names: each a .toml file, or a folder of them."""
    out = []
    for p in map(Path, specs):
        if p.is_dir():
            found = sorted(p.glob("*.toml"))
            if not found:
                raise CaseError(f"--cases={p}: the folder holds no .toml file; put [[case]] tables in FILE.toml")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise CaseError(
                f"--cases={p}: no such file or folder; pass a .toml file of [[case]] tables or a folder of them"
            )
    return out


def load_catalog(paths: list[Path] | None = None, external: list[Path] = (), confine: bool = True) -> list[Case]:
    """Load every case from ``cases/*.toml`` (or the given files), and the declarations ``external``
    names (files or folders from outside the repository: any category name, values files beside them);
    names must be unique across all. ``confine``: a ``values_file`` must lie in its declaration's folder."""
    builtin = (
        sorted(CATALOG_DIR.glob("*.toml")) + sorted((CATALOG_DIR / "imported").glob("*.toml"))
        if paths is None
        else list(paths)
    )
    cases: dict[str, Case] = {}
    for files, schema in ((builtin, SCHEMA), (case_files(list(external)), EXTERNAL_SCHEMA)):
        for path in files:
            for where, entry in tables([path], _CASE_TABLES):
                case = _check(entry, where, schema, Path(path).parent, confine)
                if case.name in cases:
                    raise CaseError(f"{where}: duplicate case name (also in {cases[case.name].source})")
                cases[case.name] = case
    return list(cases.values())
