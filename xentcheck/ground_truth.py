"""Imported ground truth: expected values from an outside source (ONNX's backend test vectors, a
framework's unit tests) as a second, independent judge of the oracle.

A case may carry ``expected = { value, source, mean_by, dtype, ... }``: the loss its source computed for
the case's inputs, reduction and options. The oracle is evaluated for that problem under the source's
mean divisor (``mean_by``), per-example averaging of the last axis (``mean_last_axis``, Keras's binary
losses) and documented numerical policies (``policies``, e.g. Keras's probability clip and
renormalisation, the same policies the expectations registry names), and must agree with the expected
values within the rounding error of a computation in the source's dtype (the same bound a binding's
result is judged by). A literal a person printed to few digits (``decimals``: the decimal places
printed, one number or one per value) also carries the rounding of its printing: half a unit in the
last printed place (``rounding = "nearest"``, the default) or one unit (``"truncated"``, where the
source's own arithmetic shows it cut digits off). A disagreement beyond that fails the oracle, never
the bindings. The bindings are judged on the case as on every other.
"""

from __future__ import annotations

import numpy as np

from . import reference
from .compare import Comparison, compare
from .problem import Problem, unit_roundoff
from .reference import Convention
from .tolerance import bound


def printed_rounding(expected: dict, shape: tuple[int, ...]) -> np.ndarray:
    """The absolute rounding of the expected values as their source printed them (0 where ``decimals``
    is not given): half a unit in the last printed decimal place, or a whole unit if truncated."""
    decimals = expected.get("decimals")
    if decimals is None:
        return np.zeros(shape)
    unit = 10.0 ** -np.asarray(decimals, dtype=np.float64)
    half = 1.0 if expected.get("rounding", "nearest") == "truncated" else 0.5
    return np.broadcast_to(half * unit, shape) if np.ndim(unit) == 0 else (half * unit).reshape(shape)


def source_convention(expected: dict) -> Convention:
    """The convention the source computed its expected values under: its mean divisor, whether it
    averages the last axis, and its documented numerical policies."""
    return Convention(
        mean_by=expected.get("mean_by", reference.MATH.mean_by),
        mean_last_axis=bool(expected.get("mean_last_axis", False)),
        **expected.get("policies", {}),
    )


def oracle_vs_expected(problem: Problem, expected: dict) -> Comparison:
    """The oracle's value of ``problem`` under the source's convention (:func:`source_convention`)
    compared with ``expected['value']['values']``, computed by the source in ``expected['dtype']``
    (default the problem's) and printed with ``expected['decimals']`` places, if given."""
    ev = reference.evaluate(problem, source_convention(expected))
    dtype = expected.get("dtype", problem.dtype)
    want = np.asarray(expected["value"]["values"], dtype=np.float64)
    tol = bound(ev.value_scale, dtype) + printed_rounding(expected, want.shape)
    return compare(want, ev.value, tol, scale_a=ev.value_scale[0], eps=2 * unit_roundoff(dtype))
