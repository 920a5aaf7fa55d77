"""The logs of the binary loss clamped from below (PyTorch's -100)."""

from ._policy import Policy

POLICY = Policy(
    name="log_clamp",
    kind=float,
    stage="core",
    ops=("bce", "sigmoid_bce"),
    doc="""`bce`: `log(p)` and `log(1 - p)` are clamped from below at this value (PyTorch's -100), so a
    probability of 0 or 1 gives a finite loss.""",
)
