"""Interaction cases: generated from each binding's declared capabilities so that every pair (with
``--interactions=3``, every triple) of option values it declares meets in at least one case it runs.

Bugs live where options meet: class weights with label smoothing, ignore_index under a channels-first
layout, a sample-weighted mean in float16. A *factor* is one thing a binding lets the caller vary
(target kind, reduction, dtype, each option on or off, -inf masks); a covering array of strength 2
over the binding's factors (built by ``allpairspy``, deterministic) gives a few rows that together
contain every pair of values. Each row becomes a case named by what it combines
(``ix-soft-cw-ls-spatial``; dtype and reduction are in the check id), judged by the oracle like every
other case. Combinations no problem can have (ignore_index needs index targets; channels-first needs
spatial dimensions) are *ruled out* with the reason, so the pair coverage the report shows is complete.
"""

from __future__ import annotations

import itertools
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field

from allpairspy import AllPairs

from xentcheck.problem import CATEGORICAL_OPS, DTYPES, LINEAR_OPTIONS, OPTIONS
from xentcheck.protocol import Binding

from . import Case

CATEGORY = "interactions"
#: the strengths the generator builds (0: no interaction cases)
STRENGTHS = (0, 2, 3)
#: option -> the short name it has in case ids
SHORT = {
    "class_weight": "cw",
    "sample_weight": "sw",
    "pos_weight": "pw",
    "ignore_index": "ii",
    "label_smoothing": "ls",
    "spatial": "spatial",
    "channels_first": "cf",
    "mask": "mask",
    "where": "where",
    "bias": "bias",
    "softcap": "cap",
    "z_loss": "zl",
}


class InteractionError(ValueError):
    """A capability the generator cannot use, or a strength it cannot build; one line naming the
    binding and the value."""


def factors(binding: Binding) -> OrderedDict[str, list]:
    """The factors of ``binding`` and their values, from its declared capabilities (sorted, so the
    covering array and its case ids are the same every run)."""
    caps = binding.caps
    unknown = sorted(set(caps.options) - set(OPTIONS))
    if unknown:
        raise InteractionError(
            f"binding {binding.name}: declares unknown option {unknown[0]!r}; known options: {', '.join(OPTIONS)}"
        )
    bad = sorted(set(caps.dtypes) - set(DTYPES))
    if bad:
        raise InteractionError(f"binding {binding.name}: declares unknown dtype {bad[0]!r}; known: {', '.join(DTYPES)}")
    f: OrderedDict[str, list] = OrderedDict()
    f["target"] = sorted(caps.targets)
    f["reduction"] = sorted(caps.reductions)
    f["dtype"] = sorted(caps.dtypes, key=DTYPES.index)
    for option in sorted(caps.options):
        f[option] = [False, True]
    if caps.op == "softmax_ce":  # -inf logits are part of every softmax API's contract
        f["mask"] = [False, True]
    return f


def conflict(row: dict) -> str | None:
    """Why no problem has these factor values together (None: some problem does). ``row`` may be partial."""
    target = row.get("target")
    if row.get("ignore_index") and target not in (None, "index"):
        return f"ignore_index applies to index targets, not {target}"
    if row.get("channels_first") and row.get("spatial") is False:
        return "a channels-first layout needs spatial dimensions"
    return None


def _completion(partial: dict, f: OrderedDict[str, list]) -> dict | None:
    """A full row extending ``partial`` with no conflict, or None (depth-first; the factors are few)."""
    rest = [k for k in f if k not in partial]

    def go(i: int, row: dict) -> dict | None:
        if conflict(row) is not None:
            return None
        if i == len(rest):
            return row
        for v in f[rest[i]]:
            done = go(i + 1, {**row, rest[i]: v})
            if done is not None:
                return done
        return None

    return go(0, dict(partial))


def why_infeasible(partial: dict, f: OrderedDict[str, list]) -> str | None:
    """Why no problem of this binding has these factor values together, or None when one does."""
    why = conflict(partial)
    if why is not None or _completion(partial, f) is not None:
        return why
    for k in f:  # the factor none of whose declared values fits
        if k not in partial and all(conflict({**partial, k: v}) for v in f[k]):
            return conflict({**partial, k: f[k][0]}) + f" (the binding declares {k} {', '.join(map(str, f[k]))})"
    return "no declared combination of the other factors allows it"


def _label(name: str, value) -> str:
    if name in ("target", "reduction", "dtype"):
        return f"{name}={value}"
    return f"{name}={'on' if value else 'off'}"


@dataclass
class Plan:
    """The interaction cases of one binding, and its pair coverage."""

    strength: int
    factors: OrderedDict[str, list]
    rows: list[dict]
    #: every pair of factor values, as ("name=value", "name=value")
    pairs: list[tuple[str, str]] = field(default_factory=list)
    covered: list[tuple[str, str]] = field(default_factory=list)
    #: (pair, reason) for the pairs no problem can have, or the binding's capabilities rule out
    ruled_out: list[tuple[tuple[str, str], str]] = field(default_factory=list)

    @property
    def missing(self) -> list[tuple[str, str]]:
        settled = {p for p, _ in self.ruled_out} | set(self.covered)
        return [p for p in self.pairs if p not in settled]

    def as_dict(self) -> dict:
        """The coverage as the results file holds it (``environment.interactions``)."""
        return {
            "strength": self.strength,
            "cases": len(self.rows),
            "pairs": len(self.pairs),
            "covered": len(self.covered),
            "ruled_out": [{"pair": list(p), "reason": r} for p, r in self.ruled_out],
            "missing": [list(p) for p in self.missing],
            "factors": {k: [str(v) for v in vs] for k, vs in self.factors.items()},
        }


def check_strength(strength: int) -> None:
    """Raise InteractionError (one line) unless the generator builds ``strength``."""
    if strength not in STRENGTHS:
        raise InteractionError(
            f"--interactions={strength}: the generator builds strength 2 (every pair), 3 (every triple) or 0 (none)"
        )


def plan(binding: Binding, strength: int = 2) -> Plan:
    """The covering array of ``binding``'s factors at ``strength``, and which pairs it covers."""
    check_strength(strength)
    f = factors(binding)
    names = list(f)  # target, reduction and dtype at least: strength 3 is always buildable
    rows: list[dict] = []
    if strength:
        gen = AllPairs(
            f, n=strength, filter_func=lambda r: _completion(dict(zip(names, r, strict=False)), f) is not None
        )
        rows = [dict(zip(names, r, strict=True)) for r in gen]
        rows += _complete(f, rows, strength)
    p = Plan(strength, f, rows)
    seen = {pair for row in rows for pair in itertools.combinations([_label(k, row[k]) for k in names], 2)}
    for a, b in itertools.combinations(names, 2):
        for va, vb in itertools.product(f[a], f[b]):
            pair = (_label(a, va), _label(b, vb))
            p.pairs.append(pair)
            why = why_infeasible({a: va, b: vb}, f)
            if why:
                p.ruled_out.append((pair, why))
            elif pair in seen:
                p.covered.append(pair)
    return p


def _tuples(row: dict, strength: int) -> set[tuple]:
    return set(itertools.combinations(row.items(), strength))


def _complete(f: OrderedDict[str, list], rows: list[dict], strength: int) -> list[dict]:
    """Rows for the feasible tuples ``allpairspy`` left out (its greedy search under a filter can miss a
    few): each new row starts from one missing tuple and fills the other factors greedily with the
    values that cover the most tuples still missing, never a conflicting one."""
    names = list(f)
    want = {
        t
        for combo in itertools.combinations(names, strength)
        for t in (tuple(zip(combo, vals, strict=True)) for vals in itertools.product(*(f[k] for k in combo)))
        if _completion(dict(t), f) is not None
    }
    missing = want - set().union(*(_tuples(r, strength) for r in rows))
    extra: list[dict] = []
    while missing:
        row = dict(min(missing, key=repr))  # deterministic
        for k in names:
            if k in row:
                continue
            options = [v for v in f[k] if _completion({**row, k: v}, f) is not None]
            row[k] = max(options, key=lambda v, k=k: len(_tuples({**row, k: v}, min(strength, len(row) + 1)) & missing))
        row = {k: row[k] for k in names}
        extra.append(row)
        missing -= _tuples(row, strength)
    return extra


def case_name(op: str, row: dict) -> str:
    """A readable id naming what the row combines (dtype and reduction are in the check id)."""
    parts = ["ix", op.replace("_", ""), row["target"]]
    parts += [SHORT[k] for k in SHORT if row.get(k)]
    return "-".join(parts)


def case(op: str, row: dict) -> Case:
    """The case of one row for ``op``: small, seeded by its name, with every option the row turns on."""
    name = case_name(op, row)
    categorical = op in CATEGORICAL_OPS
    classes = 5 if categorical else 3
    shape = (4, 3, classes) if row.get("spatial") else (8, classes)
    kind = row["target"]
    targets: dict = {"kind": kind}
    if kind == "soft" and categorical:
        targets["zeros"] = 0.2
    on = {k for k, v in row.items() if v is True}
    return Case(
        name=name,
        category=CATEGORY,
        ops=(op,),
        shape=shape,
        seed=zlib.crc32(name.encode()) % 100_000,
        targets=targets,
        logits={"dist": "normal", "scale": 2.0},
        reductions=(row["reduction"],),
        dtypes=(row["dtype"],),
        class_weight={"low": 0.25, "high": 2.0} if "class_weight" in on else None,
        sample_weight={"low": 0.25, "high": 2.0} if "sample_weight" in on else None,
        pos_weight={"low": 0.5, "high": 3.0} if "pos_weight" in on else None,
        ignore_index=-100 if "ignore_index" in on else None,
        label_smoothing=0.1 if "label_smoothing" in on else 0.0,
        mask={"fraction": 0.3} if "mask" in on else None,
        where={"fraction": 0.3} if "where" in on else None,
        channels_first="channels_first" in on,
        # linear_ce: X [8, 8] and a classifier of 5 classes, with the linear options the row turns on
        linear={
            "hidden": 8,
            **({"bias": True} if "bias" in on else {}),
            **({"softcap": 5.0} if "softcap" in on else {}),
            **({"z_loss": 1e-3} if "z_loss" in on else {}),
        }
        if op == "linear_ce"
        else None,
        description="generated: " + ", ".join(_label(k, v) for k, v in row.items()),
        source="cases/interactions.py",
    )


#: what a ``mean`` divides by, in words (xentcheck.reference.Convention.mean_by)
MEAN_BY = {
    "count": "the element count",
    "valid_count": "the count of non-ignored elements",
    "weight_sum": "the sum of the per-example weights (class x sample weight of each counted example)",
    "nonzero_weight_count": "the count of non-zero weights",
}


def conventions(binding: Binding) -> dict[str, str]:
    """The binding's stated semantics where options meet, per target kind: what its mean divides by
    with every weight it declares, and how label smoothing is formed; the oracle judges by these, and
    the report shows them."""
    out = {}
    opts = binding.caps.options
    for kind in sorted(binding.caps.targets):
        row = {
            "target": kind,
            "reduction": "mean",
            "dtype": "float64",
            **{o: True for o in ("class_weight", "sample_weight", "pos_weight", "label_smoothing") if o in opts},
        }
        if "ignore_index" in opts and kind == "index":
            row["ignore_index"] = True
        p = case(binding.caps.op, row).problem(binding.caps.op, "float64", "mean")
        conv = binding.convention_for(p)
        text = f"mean divides by {MEAN_BY.get(conv.mean_by, conv.mean_by)}"
        if conv.mean_last_axis:
            text += " of per-example means over the last axis"
        if "label_smoothing" in opts:
            text += "; smoothing eps / C per class" if binding.caps.op in CATEGORICAL_OPS else "; smoothing eps / 2"
            text += ", weighted by the class weights" if "class_weight" in opts else ""
        policies = conv.policies()
        if policies:
            text += "; documented policies: " + ", ".join(f"{k}={v}" for k, v in policies.items())
        out[kind] = text
    return out


#: the values each facet can take for an op, whatever a binding declares (what --probe-capabilities tries)
def _all_values(op: str) -> dict[str, list]:
    categorical = op in CATEGORICAL_OPS
    options = [
        o
        for o in OPTIONS
        if not (o == "pos_weight" and op != "sigmoid_bce")  # a logit-side weight
        and not (o in ("ignore_index", "channels_first") and not categorical)
        and not (o == "where" and op != "softmax_ce")  # a class mask of the softmax
        and not (o in LINEAR_OPTIONS and op != "linear_ce")
    ]  # the classifier's options
    return {
        "target": ["index", "onehot", "soft"] if categorical else ["binary", "soft"],
        "reduction": ["none", "sum", "mean"],
        "dtype": list(DTYPES),
        "option": options,
    }


def probes(binding: Binding) -> list[tuple[str, str, dict]]:
    """(facet, value, row) for every target kind, option, reduction and dtype the op admits but the
    binding does not declare: one case each, the rest of it declared and plain, to find out whether the
    API takes it (a declaration narrower than the API) or a documented parameter raises."""
    caps = binding.caps
    base = {
        "target": sorted(caps.targets)[0],
        "reduction": "mean" if "mean" in caps.reductions else sorted(caps.reductions)[0],
        "dtype": "float32" if "float32" in caps.dtypes else sorted(caps.dtypes)[0],
    }
    out = []
    values = _all_values(caps.op)
    for facet, declared in (("target", caps.targets), ("reduction", caps.reductions), ("dtype", caps.dtypes)):
        for v in values[facet]:
            if v not in declared:
                out.append((facet, v, {**base, facet: v}))
    for option in values["option"]:
        if option in caps.options:
            continue
        row = {**base, option: True}
        if option == "channels_first":
            row["spatial"] = True
        if option == "ignore_index":
            row["target"] = "index"
        if conflict(row) is None:
            out.append(("option", option, row))
    return out
