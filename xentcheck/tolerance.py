"""The tolerance rule, written once and the same for every framework (see docs/tolerance.md).

For an output element whose oracle error scale is ``(A, S)`` and a computation in a dtype with
unit roundoff ``u``::

    bound = u * (KAPPA * A + S) + KAPPA * tiny

``A`` is the sum of magnitudes of the terms a stable algorithm adds to form the element (so every
rounding of an intermediate of size at most ``A`` is covered), ``S`` the magnitude exposed to the
error of summing ``n`` terms (``n u`` relative, the textbook worst case of recursive summation).
KAPPA = 8 covers the longest chain of elementary operations in any op (subtract the max, exp,
add, log, add back, subtract the target logit, multiply by the target weight: 7 roundings of at
most ``u`` each). Results near the underflow threshold also carry the standard model's absolute
term: every operation may add an error of at most the smallest normal number ``tiny``, so the bound
gets ``KAPPA * tiny`` (a float32 gradient of 1e-145 is 0 in float32, legitimately). Nothing in this
module depends on the framework being checked.
"""

from __future__ import annotations

import numpy as np

from .problem import unit_roundoff

KAPPA = 8.0
#: smallest positive normal number of each dtype
TINY = {"float16": 2.0**-14, "bfloat16": 2.0**-126, "float32": 2.0**-126, "float64": 2.0**-1022}


def compute_dtype(case_dtype: str, output_dtype: str | None) -> str:
    """The dtype whose roundoff applies: the less precise of the input and the result dtype."""
    order = ["float64", "float32", "float16", "bfloat16"]
    if output_dtype not in order:
        return case_dtype
    return max(case_dtype, output_dtype, key=order.index)


#: the dtype long sums are accumulated in, per input dtype: half-precision inputs are summed in float32,
#: as every framework's own kernels do (PyTorch's acc_type, JAX's upcast of f16/bf16 reductions). A
#: softmax's exp-sum over a 32000-class row or a mean over a batch accumulated in float16 errs by up to
#: n u: the summation term is judged with the accumulation dtype's roundoff, so that error is visible.
ACCUMULATION = {"float16": "float32", "bfloat16": "float32"}


def accumulation_dtype(dtype: str) -> str:
    """The dtype whose roundoff bounds the summation term ``S`` of a result computed in ``dtype``."""
    return ACCUMULATION.get(dtype, dtype)


def bound(scale: tuple[np.ndarray, np.ndarray], dtype: str, accumulate: str | None = None) -> np.ndarray:
    """Absolute error bound per element for a result computed in ``dtype`` whose sums are accumulated
    in ``accumulate`` (default :func:`accumulation_dtype`, what every check is judged by; another
    dtype shows what a different accumulation would be allowed)."""
    a, s = scale
    ua = unit_roundoff(accumulate or accumulation_dtype(dtype))
    with np.errstate(all="ignore"):
        tiny = TINY[dtype]
        return (
            unit_roundoff(dtype) * KAPPA * np.asarray(a, dtype=np.float64)
            + ua * np.asarray(s, dtype=np.float64)
            + KAPPA * tiny
        )
