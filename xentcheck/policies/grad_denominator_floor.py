"""The binary gradient's denominator floored (PyTorch's BCE backward)."""

from ._policy import Policy

POLICY = Policy(
    name="grad_denominator_floor",
    kind=float,
    stage="core",
    ops=("bce", "sigmoid_bce"),
    doc="""`bce`: the gradient is `(p - t) / max(p (1 - p), floor)` (floor rounded to the dtype, as a C++
    constant converted to the element type: 1e-12 is 0 in float16).""",
)
