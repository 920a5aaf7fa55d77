"""Properties of the input a binding receives, and conditions over them.

A registry entry says where its behaviour occurs as a condition on the problem (``when = { ... }``),
not by our own case names: a user's case with a +inf logit meets the +inf entries whatever it is
called. Each property is a small, documented function of a :class:`~xentcheck.problem.Problem`; a
condition is a table of ``property = value`` pairs that must all hold. A value may be a list, which
holds when any of its values does; a set-valued property (``options``, ``out_of_range_labels``) holds a
value when it contains it.

Properties are computed on the problem as the binding receives it (inputs already rounded to the dtype
under test; the class axis is last in the problem, ``layout`` says how it is handed over).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .problem import (
    CATEGORICAL_OPS,
    DTYPES,
    MALFORMED,
    OPS,
    OPTIONS,
    REDUCTIONS,
    SMALLEST_NORMAL,
    Problem,
    round_to,
    unit_roundoff,
)

#: the kinds of out-of-range label (``out_of_range_labels``)
LABEL_RANGES = ("at_or_above_classes", "negative", "below_minus_classes")


@dataclass(frozen=True)
class Property:
    """One named property of a problem: its function, its value type and (for strings) its values."""

    name: str
    doc: str
    of: Callable[[Problem], object]
    kind: type  # bool, int, float, str; for a set-valued property, str with ``many``
    values: tuple[str, ...] = ()
    many: bool = False

    def holds(self, problem: Problem, wanted: object) -> bool:
        """Whether the property of ``problem`` has ``wanted`` (any of a list; contained, if set-valued)."""
        got = self.of(problem)
        options = wanted if isinstance(wanted, list) else [wanted]
        if self.many:
            return any(w in got for w in options)
        return any(got == w for w in options)


# --- the properties, each a small function of the problem ---------------------------------------


def empty_batch(p: Problem) -> bool:
    """The batch has no examples (the input's first axis has length 0)."""
    return p.x.shape[0] == 0


def rank(p: Problem) -> int:
    """The number of axes of the input: 2 for (N, C), 4 for a segmentation map (N, H, W, C)."""
    return int(p.x.ndim)


def spatial_rank(p: Problem) -> int:
    """The number of spatial axes between the batch and the class axis (0 for (N, C))."""
    return max(int(p.x.ndim) - 2, 0)


def layout(p: Problem) -> str:
    """How the class axis is handed to the binding: ``channels_last`` (the problem's own) or
    ``channels_first`` ((N, C, d1, ...), the binding told axis=1)."""
    return "channels_first" if p.channels_first else "channels_last"


def dtype(p: Problem) -> str:
    """The dtype under test."""
    return p.dtype


def num_classes(p: Problem) -> int:
    """The length of the class axis."""
    return p.num_classes


def op(p: Problem) -> str:
    """The op (xentcheck.problem.OPS)."""
    return p.op


def target_kind(p: Problem) -> str:
    """The target's kind: ``index``, ``onehot``, ``soft`` or ``binary``."""
    return p.target_kind


def reduction(p: Problem) -> str:
    """The reduction asked for: ``none``, ``sum`` or ``mean``."""
    return p.reduction


def options(p: Problem) -> frozenset[str]:
    """The options the problem uses (xentcheck.problem.OPTIONS)."""
    return p.options_used()


def label_smoothing(p: Problem) -> float:
    """The label smoothing factor (0 without)."""
    return float(p.label_smoothing)


def has_pos_inf(p: Problem) -> bool:
    """The input (logits, log-probabilities or probabilities) holds a +inf."""
    return bool(np.any(np.isposinf(p.x)))


def has_neg_inf(p: Problem) -> bool:
    """The input holds a -inf (a masked logit, the log of a zero probability)."""
    return bool(np.any(np.isneginf(p.x)))


def has_nan(p: Problem) -> bool:
    """The input holds a NaN."""
    return bool(np.any(np.isnan(p.x)))


def has_zero(p: Problem) -> bool:
    """The input holds a zero (+0 or -0) or a subnormal (which CPU kernels may flush to zero): where |x|
    and max(x, 0) have their kink."""
    return bool(np.any(np.abs(p.x) < SMALLEST_NORMAL[p.dtype]))


def has_inf(p: Problem) -> bool:
    """The input holds a +inf or a -inf."""
    return bool(np.any(np.isinf(p.x)))


def _counted(p: Problem) -> np.ndarray:
    """The per-example mask of rows that count (valid labels; every row for dense targets)."""
    return p.valid_mask()


def neg_inf_on_target_mass(p: Problem) -> bool:
    """Categorical ops: a -inf logit (or log-probability, or a zero probability) where a counted row's
    target has mass, so the row's loss is +inf."""
    if p.op not in CATEGORICAL_OPS or p.malformed is not None or p.x.size == 0:
        return False
    dead = (p.x == 0) if p.op == "categorical_ce" else np.isneginf(p.x)
    return bool(np.any(dead & (p.dense_target() > 0) & _counted(p)[..., None]))


def row_without_target_mass(p: Problem) -> bool:
    """Categorical ops with dense targets: a row whose target is all zeros (it contributes no loss)."""
    if p.op not in CATEGORICAL_OPS or p.target_kind == "index" or p.malformed is not None:
        return False
    return bool(np.any(np.sum(np.abs(p.target), axis=-1) == 0))


def has_ignored_rows(p: Problem) -> bool:
    """Some example's label is ``ignore_index``."""
    return bool(np.any(p.ignored_rows()))


def all_rows_ignored(p: Problem) -> bool:
    """A non-empty batch whose every label is ``ignore_index`` (a mean over no example)."""
    ignored = p.ignored_rows()
    return bool(ignored.size > 0 and np.all(ignored))


def out_of_range_labels(p: Problem) -> frozenset[str]:
    """Index targets: the kinds of label outside [0, C) among the rows not ignored:
    ``at_or_above_classes`` (C or more), ``negative`` (in [-C, -1]: NumPy-style indexing wraps it to a
    class), ``below_minus_classes`` (below -C: out of range even for wrapping indexing)."""
    if p.target_kind != "index":
        return frozenset()
    t = np.asarray(p.target)[~p.ignored_rows()]
    c = p.num_classes
    kinds = set()
    if np.any(t >= c):
        kinds.add("at_or_above_classes")
    if np.any((t < 0) & (t >= -c)):
        kinds.add("negative")
    if np.any(t < -c):
        kinds.add("below_minus_classes")
    return frozenset(kinds)


def label_overflows_dtype(p: Problem) -> bool:
    """Index targets: a valid label that the dtype under test cannot hold (it rounds to inf), so a
    binding that casts the labels to the input's dtype loses it (a 128256-class vocabulary in float16)."""
    if p.target_kind != "index" or p.dtype == "float64":
        return False
    t = np.asarray(p.target)[p.valid_mask()].astype(np.float64)
    return bool(t.size and np.any(np.isinf(round_to(t, p.dtype))))


def target_rows_normalised(p: Problem) -> bool:
    """Categorical ops: every row's target sums to 1 up to the rounding of its values to the dtype
    (abs(sum - 1) <= 2 C u: C values, each within u of its exact value), as a probability distribution
    does; always true for index targets. Where it holds, a kernel that assumes unit sums is off by no
    more than rounding; an all-zero row (no mass) is not normalised."""
    if p.op not in CATEGORICAL_OPS or p.target_kind == "index" or p.malformed is not None:
        return True
    rows = np.asarray(p.target, dtype=np.float64).reshape(-1, p.num_classes)
    sums = np.array([math.fsum(r) for r in rows])
    return bool(np.all(np.abs(sums - 1.0) <= 2 * p.num_classes * unit_roundoff(p.dtype)))


def target_outside_unit_interval(p: Problem) -> bool:
    """Dense targets: a value below 0 or above 1 (no probability)."""
    if p.target_kind == "index":
        return False
    t = np.asarray(p.target, dtype=np.float64)
    return bool(np.any((t < 0) | (t > 1)))


def malformed(p: Problem) -> str:
    """How the target is handed in a wrong form (xentcheck.problem.MALFORMED), ``none`` when it is not."""
    return p.malformed or "none"


def _where_rows(p: Problem) -> tuple[np.ndarray, np.ndarray] | None:
    if p.where is None or p.op != "softmax_ce" or p.malformed is not None:
        return None
    included = np.asarray(p.where, dtype=bool)
    return included, np.any(included, axis=-1)


def where_excludes_target_mass(p: Problem) -> bool:
    """softmax_ce with ``where=``: in a row with some class included, the target has mass on an excluded
    class (the masked softmax puts no mass there: the loss is +inf)."""
    rows = _where_rows(p)
    if rows is None:
        return False
    included, live = rows
    mass = (p.dense_target() > 0) if p.target_kind != "index" else _label_onehot(p)
    return bool(np.any(mass & ~included & live[..., None] & _counted(p)[..., None]))


def _label_onehot(p: Problem) -> np.ndarray:
    onehot = np.zeros(p.x.shape, dtype=bool)
    idx = np.clip(np.asarray(p.target), 0, p.num_classes - 1)
    np.put_along_axis(onehot, idx[..., None], True, axis=-1)
    return onehot & _counted(p)[..., None]


def where_empty_row(p: Problem) -> bool:
    """softmax_ce with ``where=``: a row with no class included (a padding row: it contributes nothing)."""
    rows = _where_rows(p)
    return rows is not None and bool(np.any(~rows[1]))


def per_example_weight_misaligned(p: Problem) -> bool:
    """A per-example sample weight, shape (N,), against a loss with spatial axes, (N, d1, ...) (the input
    without its class or last axis), whose last axis is neither 1 nor N, with N > 1: multiplied as it is,
    without expanding it to (N, 1, ...), the two do not broadcast (with d1 = 1, d1 = N or N = 1 they do)."""
    w = p.sample_weight
    loss = p.x.shape[:-1]
    return w is not None and w.ndim == 1 and len(loss) >= 2 and w.shape[0] != 1 and loss[-1] not in (1, w.shape[0])


def per_example_weight_along_last_axis(p: Problem) -> bool:
    """A per-example sample weight, shape (N,) with N > 1, against a loss with spatial axes whose last
    axis is N too, (N, ..., N): multiplied as it is, without expanding it to (N, 1, ...), it broadcasts
    along that last axis, weighting positions instead of examples (no error to tell)."""
    w = p.sample_weight
    loss = p.x.shape[:-1]
    return w is not None and w.ndim == 1 and len(loss) >= 2 and w.shape[0] > 1 and loss[-1] == w.shape[0]


def ignored_row_log_softmax_undefined(p: Problem) -> bool:
    """``softmax_ce``: an ignored row whose log-softmax is NaN: it holds a NaN or a +inf logit, or every
    logit is -inf (the row contributes nothing, but a log-softmax taken before the row is masked is NaN)."""
    if p.op != "softmax_ce" or p.ignore_index is None or p.x.size == 0 or p.malformed is not None:
        return False
    x = np.asarray(p.x)
    undefined = np.any(np.isnan(x) | (x == np.inf), axis=-1) | np.all(x == -np.inf, axis=-1)
    return bool(np.any(undefined & p.ignored_rows()))


def nan_off_target_mass(p: Problem) -> bool:
    """Categorical ops: a NaN input in a counted row at a class where the target has no mass (the loss,
    a sum over the classes with target mass, does not read it)."""
    if p.op not in CATEGORICAL_OPS or p.malformed is not None or p.x.size == 0:
        return False
    return bool(np.any(np.isnan(p.x) & (p.dense_target() == 0) & _counted(p)[..., None]))


#: the largest finite value of each dtype
_LARGEST = {
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
    "float32": 3.4028234663852886e38,
    "float64": 1.7976931348623157e308,
}


def has_near_largest(p: Problem) -> bool:
    """A finite input element of magnitude at least 1/16 of the dtype's largest finite value: a handful
    of losses that size overflow a sum held in the dtype, though their mean is finite."""
    x = np.asarray(p.x, dtype=np.float64)
    big = _LARGEST.get(p.dtype, _LARGEST["float64"]) / 16
    return bool(np.any(np.isfinite(x) & (np.abs(x) >= big)))


def has_float32_overflow(p: Problem) -> bool:
    """A finite input element beyond float32's range (it rounds to +-inf in float32, |x| above about
    3.4e38): only float64 input has one, and a binding that converts it to float32 sees an infinity."""
    x = np.asarray(p.x, dtype=np.float64)
    return bool(np.any(np.isfinite(x) & np.isinf(round_to(x, "float32"))))


def _property(f: Callable, kind: type, values: tuple[str, ...] = (), many: bool = False) -> Property:
    return Property(f.__name__, " ".join((f.__doc__ or "").split()), f, kind, values, many)


#: every property a condition may name
PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in (
        _property(empty_batch, bool),
        _property(rank, int),
        _property(spatial_rank, int),
        _property(layout, str, ("channels_last", "channels_first")),
        _property(dtype, str, DTYPES),
        _property(num_classes, int),
        _property(op, str, OPS),
        _property(target_kind, str, ("index", "onehot", "soft", "binary")),
        _property(reduction, str, REDUCTIONS),
        _property(options, str, OPTIONS, many=True),
        _property(label_smoothing, float),
        _property(has_pos_inf, bool),
        _property(has_neg_inf, bool),
        _property(has_inf, bool),
        _property(has_nan, bool),
        _property(has_zero, bool),
        _property(neg_inf_on_target_mass, bool),
        _property(row_without_target_mass, bool),
        _property(has_ignored_rows, bool),
        _property(all_rows_ignored, bool),
        _property(out_of_range_labels, str, LABEL_RANGES, many=True),
        _property(label_overflows_dtype, bool),
        _property(target_rows_normalised, bool),
        _property(target_outside_unit_interval, bool),
        _property(malformed, str, ("none", *MALFORMED)),
        _property(where_excludes_target_mass, bool),
        _property(where_empty_row, bool),
        _property(per_example_weight_misaligned, bool),
        _property(per_example_weight_along_last_axis, bool),
        _property(ignored_row_log_softmax_undefined, bool),
        _property(has_near_largest, bool),
        _property(has_float32_overflow, bool),
        _property(nan_off_target_mass, bool),
    )
}


def _value_schema(prop: Property) -> dict:
    title = f"when.{prop.name}"
    if prop.kind is bool:
        one = {"title": title, "type": "boolean"}
    elif prop.kind is int:
        one = {"title": title, "type": "integer"}
    elif prop.kind is float:
        one = {"title": title, "type": "number"}
    elif prop.values:
        one = {"title": title, "enum": list(prop.values)}
    else:
        one = {"title": title, "type": "string"}
    return {
        "title": title,
        "anyOf": [one, {"type": "array", "items": one, "minItems": 1}],
        "x-message": f"expected {_expects(prop)} or a list of them ({prop.doc})",
    }


def _expects(prop: Property) -> str:
    if prop.values:
        return "one of " + ", ".join(prop.values)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[prop.kind]


#: the JSON Schema of a ``when`` table (an unknown property or a value of the wrong type is one line)
SCHEMA = {
    "title": "when",
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "x-unknown": "is not a property of the input (xentcheck/conditions.py)",
    "properties": {name: _value_schema(p) for name, p in PROPERTIES.items()},
}


def holds(condition: dict, problem: Problem) -> bool:
    """Whether every ``property = value`` pair of ``condition`` holds for ``problem``."""
    with np.errstate(all="ignore"):
        return all(PROPERTIES[name].holds(problem, wanted) for name, wanted in condition.items())


def describe(problem: Problem) -> dict[str, object]:
    """Every property of ``problem`` (sets as sorted lists): for findings and repro notes."""
    with np.errstate(all="ignore"):
        out = {}
        for name, prop in PROPERTIES.items():
            v = prop.of(problem)
            out[name] = sorted(v) if isinstance(v, frozenset) else v
        return out
