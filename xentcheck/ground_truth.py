"""Imported ground truth: expected values from an outside source (ONNX's backend test vectors, a
framework's unit tests) as a second, independent judge of the oracle.

A case may carry ``expected = { value, source, mean_by, dtype }``: the loss its source computed for the
case's inputs, reduction and options. The oracle is evaluated for that problem under the source's
mean divisor and must agree with the expected values within the rounding error of a computation in
the source's dtype (the same bound a binding's result is judged by); a disagreement beyond rounding
fails the oracle, never the bindings. The bindings are judged on the case as on every other.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import reference
from .compare import Comparison, compare
from .problem import Problem, unit_roundoff
from .tolerance import bound


def oracle_vs_expected(problem: Problem, expected: dict) -> Comparison:
    """The oracle's value of ``problem`` (under ``expected['mean_by']``, default the element count)
    compared with ``expected['value']['values']``, computed by the source in ``expected['dtype']``
    (default the problem's)."""
    conv = replace(reference.MATH, mean_by=expected.get("mean_by", reference.MATH.mean_by))
    ev = reference.evaluate(problem, conv)
    dtype = expected.get("dtype", problem.dtype)
    want = np.asarray(expected["value"]["values"], dtype=np.float64)
    return compare(
        want, ev.value, bound(ev.value_scale, dtype), scale_a=ev.value_scale[0], eps=2 * unit_roundoff(dtype)
    )
