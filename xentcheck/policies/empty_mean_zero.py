"""A mean over nothing is 0 instead of 0/0."""

from ..problem import OPS
from ._policy import Policy

POLICY = Policy(
    name="empty_mean_zero",
    kind=bool,
    stage="after",
    ops=OPS,
    doc="""A mean over nothing (divisor 0: an empty batch, every label ignored) is 0 instead of
    `0/0 = NaN`, with a zero gradient. Read by the reduction.""",
)
