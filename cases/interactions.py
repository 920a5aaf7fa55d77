"""Interaction cases: generated from each binding's declared capabilities so that the option values it
declares meet in the cases it runs, three at a time where they change the mathematics, two at a time
for the rest.

Bugs live where options meet: class weights with label smoothing, ignore_index under a channels-first
layout, a sample-weighted mean in float16, and some only where three meet (ignored rows of a spatial
input under class weights). A *factor* is one thing a binding lets the caller vary (target kind,
reduction, dtype, each option on or off, -inf masks). A covering array over the binding's factors
(built by ``covertable``, deterministic) gives a few rows that together contain every combination the
strength asks for:

* ``mixed`` (the default): every triple of values of the factors that change the mathematics
  (:data:`MATH_FACTORS`: target kind, reduction, the weights, ignore_index, label smoothing, spatial
  dimensions and layout, masks) and every pair of values of all factors (so dtype, and linear_ce's
  classifier options, meet every other factor's values two at a time);
* ``2``: every pair; ``3``: every triple, of all factors (a longer run); ``0``: none.

Each row becomes a case named by what it combines (``ix-softmaxce-soft-cw-ls-spatial``; dtype and
reduction are in the check id), judged by the oracle like every other case. Combinations no problem
can have (ignore_index needs index targets; channels-first needs spatial dimensions) are *ruled out*
with the reason, so the coverage the report shows per strength is complete.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import covertable

from xentcheck.problem import CATEGORICAL_OPS, DTYPES, LINEAR_OPTIONS, OPTIONS
from xentcheck.protocol import Binding
from xentcheck.records import InteractionCoverage, StrengthCoverage

from . import Case

CATEGORY = "interactions"
#: the default strength: triples of the factors that change the mathematics, pairs of all factors
MIXED = "mixed"
#: the strengths the generator builds (0: no interaction cases)
STRENGTHS = (MIXED, 2, 3, 0)
#: the factors that change the mathematics of the loss: in a ``mixed`` array their values meet three at
#: a time (the issue's list: weights, ignore, smoothing, target kind, spatial and layout, reduction,
#: masks). The others (dtype; linear_ce's bias, softcap and z_loss) meet every value two at a time.
MATH_FACTORS = frozenset(
    {
        "target",
        "reduction",
        "class_weight",
        "sample_weight",
        "pos_weight",
        "ignore_index",
        "label_smoothing",
        "spatial",
        "channels_first",
        "mask",
        "where",
    }
)
#: salts of covertable's deterministic ordering tried per binding, the smallest array kept. One: over
#: the built-in bindings 2, 4 and 8 salts make 864 cases 827, 814 and 806 for 0.7, 1.9 and 4.8 s more
#: collection in every worker, more than the checks they save take
SALTS = ("",)
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

Strength = int | str
#: (factor, value) pairs in factor order: one combination of values
Combo = tuple[tuple[str, object], ...]


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


#: the rules no problem breaks: (the factors a rule reads, why a row breaks it or None)
RULES: tuple[tuple[tuple[str, str], Callable[[dict], str | None]], ...] = (
    (
        ("ignore_index", "target"),
        lambda row: (
            f"ignore_index applies to index targets, not {row['target']}"
            if row["ignore_index"] and row["target"] != "index"
            else None
        ),
    ),
    (
        ("channels_first", "spatial"),
        lambda row: (
            "a channels-first layout needs spatial dimensions"
            if row["channels_first"] and row["spatial"] is False
            else None
        ),
    ),
)


def conflict(row: dict) -> str | None:
    """Why no problem has these factor values together (None: some problem does). ``row`` may be partial."""
    for keys, why in RULES:
        if all(k in row for k in keys):
            reason = why(row)
            if reason is not None:
                return reason
    return None


def _completion(partial: dict, f: OrderedDict[str, list]) -> dict | None:
    """A full row extending ``partial`` with no conflict, or None (depth-first over the factors a rule
    reads; the others take their first value, no rule minds them)."""
    ruled = {k for keys, _ in RULES for k in keys}
    rest = [k for k in f if k not in partial and k in ruled]

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

    row = go(0, dict(partial))
    return None if row is None else {k: row[k] if k in row else f[k][0] for k in f}


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


def parse_strength(text: str | int) -> Strength:
    """``--interactions``'s value as the generator takes it: ``"mixed"``, or 0, 2 or 3; InteractionError
    (one line) for anything else."""
    value: Strength = text
    if isinstance(text, str) and text.strip().isdigit():
        value = int(text)
    elif isinstance(text, str):
        value = text.strip()
    check_strength(value)
    return value


def check_strength(strength: Strength) -> None:
    """Raise InteractionError (one line) unless the generator builds ``strength``."""
    if strength not in STRENGTHS or isinstance(strength, bool):
        raise InteractionError(
            f"--interactions={strength}: the generator builds strength 2 (every pair), 3 (every triple), "
            f"{MIXED} (the default: every triple of the factors that change the mathematics, every pair "
            f"of all) or 0 (none)"
        )


def requirements(f: OrderedDict[str, list], strength: Strength) -> list[tuple[int, tuple[str, ...]]]:
    """What a covering array at ``strength`` guarantees: (t, factors) for each set of factors whose
    values meet t at a time. ``mixed``: triples of the math factors (when there are three) and pairs
    of all; 2 or 3: that many at a time of all."""
    names = tuple(f)
    if strength == MIXED:
        math = tuple(k for k in names if k in MATH_FACTORS)
        return ([(3, math)] if len(math) >= 3 else []) + [(2, names)]
    return [(strength, names)] if strength else []


def _combos(row: dict, reqs: list[tuple[int, tuple[str, ...]]]) -> Iterator[Combo]:
    """The combinations the requirements ask for that ``row`` (perhaps partial) contains."""
    for t, names in reqs:
        present = [k for k in names if k in row]
        for combo in itertools.combinations(present, t):
            yield tuple((k, row[k]) for k in combo)


@dataclass
class Coverage:
    """The combinations of ``strength`` values of ``factors`` (as "name=value" labels): covered by a
    row, ruled out (with the reason) or missing."""

    strength: int
    factors: tuple[str, ...]
    tuples: list[tuple[str, ...]] = field(default_factory=list)
    covered: list[tuple[str, ...]] = field(default_factory=list)
    ruled_out: list[tuple[tuple[str, ...], str]] = field(default_factory=list)

    @property
    def missing(self) -> list[tuple[str, ...]]:
        settled = {p for p, _ in self.ruled_out} | set(self.covered)
        return [p for p in self.tuples if p not in settled]

    def record(self) -> StrengthCoverage:
        return StrengthCoverage(
            strength=self.strength,
            factors=self.factors,
            tuples=len(self.tuples),
            covered=len(self.covered),
            ruled_out=tuple({"tuple": p, "reason": r} for p, r in self.ruled_out),
            missing=tuple(self.missing),
        )


@dataclass
class Plan:
    """The interaction cases of one binding, and their coverage at each strength they guarantee."""

    strength: Strength
    factors: OrderedDict[str, list]
    rows: list[dict]
    coverage: list[Coverage] = field(default_factory=list)

    @property
    def missing(self) -> list[tuple[str, ...]]:
        """Every combination neither covered nor ruled out, at any strength (a gap)."""
        return [m for c in self.coverage for m in c.missing]

    def record(self) -> InteractionCoverage:
        """The coverage as the results file holds it (``environment.interactions``)."""
        return InteractionCoverage(
            strength=str(self.strength),
            cases=len(self.rows),
            factors={k: [str(v) for v in vs] for k, vs in self.factors.items()},
            by_strength=tuple(c.record() for c in self.coverage),
        )

    def as_dict(self) -> dict:
        return self.record().to_json()


def plan(binding: Binding, strength: Strength = MIXED) -> Plan:
    """The covering array of ``binding``'s factors at ``strength``, and what it covers at each strength."""
    check_strength(strength)
    f = factors(binding)
    key = tuple((k, tuple(v)) for k, v in f.items())
    rows, coverage = _built(key, strength)
    return Plan(strength, f, [dict(r) for r in rows], [_copy(c) for c in coverage])


def _copy(c: Coverage) -> Coverage:
    return Coverage(c.strength, c.factors, list(c.tuples), list(c.covered), list(c.ruled_out))


@functools.lru_cache(maxsize=256)
def _built(key: tuple, strength: Strength) -> tuple[tuple[Combo, ...], tuple[Coverage, ...]]:
    """The rows and coverage of one set of factors (bindings of one API family often share theirs:
    built once per process)."""
    f: OrderedDict[str, list] = OrderedDict((k, list(v)) for k, v in key)
    reqs = requirements(f, strength)
    feasible: dict[Combo, str | None] = {}
    for t, names in reqs:
        for combo in itertools.combinations(names, t):
            for vals in itertools.product(*(f[k] for k in combo)):
                c = tuple(zip(combo, vals, strict=True))
                feasible.setdefault(c, why_infeasible(dict(c), f))
    want = {c for c, why in feasible.items() if why is None}
    rows = _smallest(f, reqs, want) if reqs else []
    seen = {c for row in rows for c in _combos(row, reqs)}
    coverage = []
    for t, names in reqs:
        cov = Coverage(t, names)
        for combo in itertools.combinations(names, t):
            for vals in itertools.product(*(f[k] for k in combo)):
                c = tuple(zip(combo, vals, strict=True))
                labels = tuple(_label(k, v) for k, v in c)
                cov.tuples.append(labels)
                if feasible[c] is not None:
                    cov.ruled_out.append((labels, feasible[c]))
                elif c in seen:
                    cov.covered.append(labels)
        coverage.append(cov)
    return tuple(tuple(r.items()) for r in rows), tuple(coverage)


def _smallest(f: OrderedDict[str, list], reqs: list[tuple[int, tuple[str, ...]]], want: set[Combo]) -> list[dict]:
    """The smallest covering array ``covertable`` makes over :data:`SALTS` (each deterministic), with any
    combination it left out added and every row the others make redundant dropped."""
    (base, _), *subs = sorted(reqs, key=lambda r: -len(r[1]))  # the requirement over all factors
    sub_models = [{"fields": list(names), "strength": t} for t, names in subs]
    constraints = [
        {"operator": "fn", "requires": list(keys), "evaluate": lambda row, why=why: why(row) is None}
        for keys, why in RULES
        if all(k in f for k in keys)
    ]
    best: list[dict] | None = None
    for salt in SALTS:
        made = covertable.make(dict(f), strength=base, sub_models=sub_models, constraints=constraints, salt=salt)
        rows = [{k: r[k] for k in f} for r in made]
        rows += _complete(f, rows, reqs, want)
        rows = _pruned(rows, reqs, want)
        if best is None or len(rows) < len(best):
            best = rows
    return best or []


def _complete(
    f: OrderedDict[str, list], rows: list[dict], reqs: list[tuple[int, tuple[str, ...]]], want: set[Combo]
) -> list[dict]:
    """Rows for the feasible combinations the generator left out (a greedy search under constraints can
    miss a few): each new row starts from one missing combination and fills the other factors greedily
    with the values that cover the most combinations still missing, never a conflicting one."""
    missing = want - {c for r in rows for c in _combos(r, reqs)}
    extra: list[dict] = []
    while missing:
        row = dict(min(missing, key=repr))  # deterministic
        for k in f:
            if k in row:
                continue
            options = [v for v in f[k] if _completion({**row, k: v}, f) is not None]
            row[k] = max(options, key=lambda v, k=k: len(set(_combos({**row, k: v}, reqs)) & missing))
        row = {k: row[k] for k in f}
        extra.append(row)
        missing -= set(_combos(row, reqs))
    return extra


def _pruned(rows: list[dict], reqs: list[tuple[int, tuple[str, ...]]], want: set[Combo]) -> list[dict]:
    """``rows`` less each row (the last first) whose wanted combinations all meet in other rows too."""
    of = [set(_combos(r, reqs)) & want for r in rows]
    count = Counter(c for cs in of for c in cs)
    keep = [True] * len(rows)
    for i in reversed(range(len(rows))):
        if all(count[c] > 1 for c in of[i]):
            keep[i] = False
            count.subtract(of[i])
    return [r for r, k in zip(rows, keep, strict=True) if k]


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
