"""Cases: named, seeded, declarative input recipes (``cases/*.toml``), turned into :class:`Problem` objects.

A case is data: adding one means adding one ``[[case]]`` table to a catalog file. The keys are
documented in ``cases/README.md``; a malformed file fails with one line naming the file, the case
and the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xentcheck.declarations import check, tables
from xentcheck.problem import CATEGORICAL_OPS, MALFORMED, Problem, round_to

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
    "interactions",  # generated from each binding's capabilities (cases/interactions.py), not declared
)

SCHEMA = case_schema(CATEGORIES)
#: cases from outside the repository (--cases) may file themselves under categories of their own
EXTERNAL_SCHEMA = case_schema(None)
_ARRAYS = ("logits", "probs", "targets")


class CaseError(ValueError):
    """A malformed case declaration; the message is one line naming the file, case and key."""


@dataclass(frozen=True)
class Case:
    """One declared case. ``problem()`` materialises it for an op, dtype and reduction."""

    name: str
    category: str
    ops: tuple[str, ...]
    shape: tuple[int, ...]
    seed: int
    targets: dict
    logits: dict | None = None
    probs: dict | None = None
    reductions: tuple[str, ...] = ("none", "mean")
    dtypes: tuple[str, ...] = ("float32", "float64")
    class_weight: dict | list | None = None
    sample_weight: dict | list | None = None
    pos_weight: dict | list | float | None = None
    ignore_index: int | None = None
    ignore_fraction: float = 0.25
    label_smoothing: float = 0.0
    mask: dict | None = None
    where: dict | None = None
    poison: dict | None = None
    invalid: dict | None = None
    channels_first: bool = False
    linear: dict | None = None  # op linear_ce: how X, W and the bias are drawn (cases/linear.py)
    description: str = ""
    source: str = field(default="", compare=False)

    @property
    def checks(self) -> tuple[str, ...]:
        """Value and gradient; only the value (what the binding does) for invalid targets."""
        return ("value",) if self.invalid is not None else ("value", "grad")

    @property
    def target_kind(self) -> str:
        return self.targets.get("kind", "index")

    def problem(self, op: str, dtype: str, reduction: str) -> Problem:
        """The concrete problem for ``op`` in ``dtype`` (inputs rounded to ``dtype``)."""
        rng = np.random.default_rng(self.seed)
        shape = self.shape
        logits = _array(self.logits, shape, rng, "logits") if self.logits is not None else None
        categorical = op in CATEGORICAL_OPS
        probs = _array(self.probs, shape, rng, "probs") if self.probs is not None else None
        target, kind = _targets(self.targets, shape, categorical, rng)
        if self.mask is not None:
            logits, target = _mask(self.mask, logits, target, kind, np.random.default_rng(self.seed + 3))
        where = None
        if self.where is not None:
            excluded, target = _exclude(self.where, shape, target, kind, np.random.default_rng(self.seed + 4))
            where = ~excluded
        if self.poison is not None:
            logits = _poison(self.poison, logits)
        if op in ("softmax_ce", "sigmoid_bce", "linear_ce"):
            x = logits  # linear_ce: none, its X and W are drawn by cases/linear.py below
        elif op == "nll":  # log-probabilities: of the declared probabilities, else the logits as they are
            with np.errstate(divide="ignore"):
                x = np.log(probs) if probs is not None else logits
        elif probs is not None:
            x = probs
        elif categorical:  # softmax in float64; a -inf logit becomes an exact 0
            with np.errstate(all="ignore"):
                e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
                x = e / e.sum(axis=-1, keepdims=True)
        else:
            x = 1.0 / (1.0 + np.exp(-logits))
        if (self.invalid or {}).get("form") == "int_logits":  # integer-valued, so the loss exists
            x = np.rint(x)
        x = round_to(x, dtype)
        if kind != "index":
            target = round_to(target, dtype)
        ignore = None
        if self.ignore_index is not None and kind == "index":
            ignore = int(self.ignore_index)
            if "values" not in self.targets:  # explicit labels are never rewritten: they say what is ignored
                drop = np.random.default_rng(self.seed + 1).random(target.shape) < self.ignore_fraction
                target = np.where(drop, ignore, target)
        invalid = None
        if self.invalid is not None and "value" in self.invalid and kind == "index":
            invalid = int(self.invalid["value"])
            target = target.copy()
            target[list(self.invalid["rows"])] = invalid
        c = shape[-1]
        weight_rng = np.random.default_rng(self.seed + 2)
        cw = _weights(self.class_weight, (c,), weight_rng, dtype)
        sw = _weights(self.sample_weight, (shape[0],), weight_rng, dtype)
        pw = _weights(self.pos_weight, (c,), weight_rng, dtype)
        if op == "linear_ce":  # hidden states and a classifier instead of logits
            from .linear import linear_problem

            return linear_problem(self, dtype, reduction, target, ignore, invalid, cw)
        return Problem(
            case=self.name, op=op, dtype=dtype, x=x, target=target, target_kind=kind,
            reduction=reduction, class_weight=cw, sample_weight=sw, pos_weight=pw,
            ignore_index=ignore, label_smoothing=float(self.label_smoothing), category=self.category,
            invalid_target=invalid, malformed=(self.invalid or {}).get("form"),
            channels_first=bool(self.channels_first), where=where,
        )


def _array(spec: dict, shape, rng: np.random.Generator, what: str) -> np.ndarray:
    if "values" in spec:
        a = np.asarray(spec["values"], dtype=np.float64)
        if a.shape != tuple(shape):
            raise CaseError(f"{what}.values has shape {a.shape}, expected shape {tuple(shape)}")
        return a
    if spec.get("dist", "normal") == "normal":
        a = rng.normal(0.0, float(spec.get("scale", 1.0)), size=shape)
    else:  # the schema allows only normal and uniform
        a = rng.uniform(float(spec.get("low", 0.0)), float(spec.get("high", 1.0)), size=shape)
    if "row_scales" in spec:  # rows of very different scale in one batch
        scales = np.asarray(spec["row_scales"], dtype=np.float64)
        a = a * np.resize(scales, shape[0]).reshape((shape[0],) + (1,) * (len(shape) - 1))
    return a


def _excluded(spec: dict, shape: tuple[int, ...], target: np.ndarray, kind: str,
              rng: np.random.Generator) -> np.ndarray:
    """A fraction of non-target classes, plus the target class of the ``on_target`` rows and every class
    of the ``rows`` rows (a boolean array shaped like the input)."""
    mask = rng.random(shape) < float(spec.get("fraction", 0.3))
    if kind == "index":
        keep = np.zeros_like(mask)
        np.put_along_axis(keep, target[..., None], True, axis=-1)
    else:
        keep = target == np.max(target, axis=-1, keepdims=True)
    mask &= ~keep
    for row in spec.get("on_target", []):
        cls = target[row] if kind == "index" else np.argmax(target[row], axis=-1)
        np.put_along_axis(mask[row], np.asarray(cls)[..., None], True, axis=-1)
    if spec.get("rows") is not None:  # whole rows masked
        for row in spec["rows"]:
            mask[row] = True
    return mask


def _drop_mass(target: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Dense targets without mass ``where`` it holds, renormalised (a row left without mass stays 0)."""
    target = np.where(where, 0.0, target)
    sums = target.sum(axis=-1, keepdims=True)
    return np.where(sums > 0, target / np.where(sums > 0, sums, 1), target)


def _mask(spec: dict, logits: np.ndarray, target: np.ndarray, kind: str, rng: np.random.Generator):
    """Set a fraction of logits to -inf. Non-target classes only, unless ``on_target`` lists rows whose
    target class is masked too; dense targets lose their mass on masked classes (renormalised)."""
    mask = _excluded(spec, logits.shape, target, kind, rng)
    logits = np.where(mask, -np.inf, logits)
    if kind != "index":
        target = _drop_mass(target, mask)
    return logits, target


def _exclude(spec: dict, shape: tuple[int, ...], target: np.ndarray, kind: str, rng: np.random.Generator):
    """The classes a ``where=`` mask excludes, chosen as ``_mask`` chooses them, and the target: dense
    targets lose their mass on excluded classes, except on the ``on_target`` rows, whose mass stays on
    the excluded target class (the case of a mask that excludes the target)."""
    excluded = _excluded(spec, shape, target, kind, rng)
    if kind != "index":
        keep_rows = np.zeros(shape[:-1] + (1,), dtype=bool)
        keep_rows[list(spec.get("on_target", []))] = True
        target = _drop_mass(target, excluded & ~keep_rows)
    return excluded, target


def _poison(spec: dict, logits: np.ndarray) -> np.ndarray:
    """Put a non-finite value (``value`` = "nan", "inf" or "-inf") at column ``column`` of ``rows``."""
    logits = logits.copy()
    value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[spec["value"]]
    for row in spec["rows"]:
        logits[row, ..., int(spec.get("column", 0))] = value
    return logits


def _targets(spec: dict, shape, categorical: bool, rng: np.random.Generator):
    kind = spec.get("kind", "index")
    c = shape[-1]
    if "values" in spec:
        v = np.asarray(spec["values"])
        if kind == "index":
            return v.astype(np.int64), "index"
        return v.astype(np.float64), ("soft" if kind == "soft" else kind)
    if kind in ("index", "onehot"):
        idx = rng.integers(0, c, size=shape[:-1])
        if kind == "index":
            return idx.astype(np.int64), "index"
        onehot = np.zeros(shape)
        np.put_along_axis(onehot, idx[..., None], 1.0, axis=-1)
        return onehot, "onehot"
    if kind == "soft" and categorical:
        y = rng.dirichlet(np.full(c, float(spec.get("alpha", 1.0))), size=shape[:-1])
        zeros = float(spec.get("zeros", 0.0))
        if zeros:
            keep = rng.random(shape) >= zeros
            keep[..., 0] |= ~keep.any(axis=-1)  # never an all-zero row
            y = y * keep
            y = y / y.sum(axis=-1, keepdims=True)
        if "total" in spec:  # rows that do not sum to one
            y = y * rng.uniform(float(spec["total"]["low"]), float(spec["total"]["high"]), size=shape[:-1] + (1,))
        return y, "soft"
    if kind == "soft":
        return rng.uniform(0.0, 1.0, size=shape), "soft"
    return (rng.random(shape) < float(spec.get("p", 0.5))).astype(np.float64), "binary"


def _weights(spec, shape, rng: np.random.Generator, dtype: str) -> np.ndarray | None:
    if spec is None:
        return None
    if isinstance(spec, (int, float)):
        return round_to(np.full(shape, float(spec)), dtype)
    if isinstance(spec, list):
        a = np.asarray(spec, dtype=np.float64)
        if a.shape != shape:
            raise CaseError(f"weights list has shape {a.shape}, expected {shape}")
        return round_to(a, dtype)
    return round_to(rng.uniform(float(spec.get("low", 0.5)), float(spec.get("high", 2.0)), size=shape), dtype)


def _load_values(spec: dict, key: str, base: Path, where: str) -> dict:
    """``spec`` with its ``values_file`` (a .npy file, or FILE.npz:KEY, beside the declaration) read
    into ``values``; a missing or unreadable file, or one that is not real numbers, is one line."""
    if "values_file" not in spec:
        return spec
    if "values" in spec:
        raise CaseError(f"{where}: {key} has both values and values_file; keep one")
    name, _, array = spec["values_file"].partition(":")
    path = base / name
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CaseError(f"{where}: {key}.values_file: no file {path}; put the .npy/.npz file beside the "
                        f"declaration") from None
    except (OSError, ValueError) as e:
        raise CaseError(f"{where}: {key}.values_file: {path} is not a NumPy .npy/.npz file ({e})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        if array not in data.files:
            raise CaseError(f"{where}: {key}.values_file: name one of the arrays of {name} as {name}:KEY "
                            f"(it holds {', '.join(data.files)})")
        data = data[array]
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
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


def _check(entry: dict, where: str, schema: dict = SCHEMA, base: Path | None = None) -> Case:
    """A validated case: the schema (keys, types, ranges), then the rules that tie keys together.
    ``base`` is the declaration's folder, where ``values_file`` arrays are read from."""
    check(entry, schema, where, CaseError)
    entry = {k: (_load_values(v, k, base or CATALOG_DIR, where) if k in _ARRAYS else v) for k, v in entry.items()}
    kind = entry["targets"].get("kind", "index")
    shape = tuple(entry["shape"])
    if entry.get("channels_first"):
        entry = {k: (_channels_last(v, shape) if k in _ARRAYS and not (k == "targets" and kind == "index") else v)
                 for k, v in entry.items()}
    if kind == "index" and "values" in entry["targets"] and \
            not np.issubdtype(np.asarray(entry["targets"]["values"]).dtype, np.integer):
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
            raise CaseError(f"{where}: targets.values has shape {got}, expected {want} for {kind} targets of "
                            f"an input of shape {shape}")
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
        if invalid.get("form") == "target_rank" and kind != "index" and shape[-1] != 1:
            raise CaseError(f"{where}: invalid.form 'target_rank' with dense targets needs a last axis of 1")
    if (entry.get("linear") is not None) != ("linear_ce" in entry["ops"]) or \
            ("linear_ce" in entry["ops"] and len(entry["ops"]) > 1):
        raise CaseError(f"{where}: op linear_ce needs a 'linear' table and is declared alone (a linear table "
                        f"applies to op linear_ce only)")
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
    kw = {k: v for k, v in entry.items() if k != "description"}
    kw["ops"], kw["shape"] = tuple(kw["ops"]), shape
    for key in ("reductions", "dtypes"):
        if key in kw:
            kw[key] = tuple(kw[key])
    case = Case(description=entry.get("description", ""), source=where, **kw)
    try:  # materialise once so that shape or value errors surface at load time, not mid-run
        for op in case.ops:
            case.problem(op, case.dtypes[0], case.reductions[0])
    except CaseError as e:
        raise CaseError(f"{where}: {e}") from None
    return case


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
            raise CaseError(f"--cases={p}: no such file or folder; pass a .toml file of [[case]] tables or a "
                            f"folder of them")
    return out


def load_catalog(paths: list[Path] | None = None, external: list[Path] = ()) -> list[Case]:
    """Load every case from ``cases/*.toml`` (or the given files), and the declarations ``external``
    names (files or folders from outside the repository: any category name, values files beside them);
    names must be unique across all."""
    builtin = sorted(CATALOG_DIR.glob("*.toml")) if paths is None else list(paths)
    cases: dict[str, Case] = {}
    for files, schema in ((builtin, SCHEMA), (case_files(list(external)), EXTERNAL_SCHEMA)):
        for path in files:
            for where, entry in tables([path], "case", "name", CaseError, "case"):
                case = _check(entry, where, schema, Path(path).parent)
                if case.name in cases:
                    raise CaseError(f"{where}: duplicate case name (also in {cases[case.name].source})")
                cases[case.name] = case
    return list(cases.values())
