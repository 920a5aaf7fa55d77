"""Keras 2's binary logs with an epsilon inside: ``log(p + e)``."""

from ._policy import Policy

POLICY = Policy(
    name="log_epsilon",
    kind=float,
    stage="core",
    ops=("bce", "sigmoid_bce"),
    doc="""`bce`: the logs are `log(p + e)` and `log(1 - p + e)` (`e` rounded to the dtype), as Keras 2
    computes them after clipping.""",
)
