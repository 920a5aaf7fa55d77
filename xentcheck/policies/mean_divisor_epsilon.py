"""A mean over the non-ignored elements divided by their count plus an epsilon (Keras 3)."""

from ..problem import OPS
from ._policy import Policy

POLICY = Policy(
    name="mean_divisor_epsilon",
    kind=float,
    stage="after",
    ops=OPS,
    doc="""A mean over the non-ignored elements (`mean_by = "valid_count"`) divides by their count plus
    this (Keras 3 before keras#21908: `total / (valid + epsilon)` mask weights). Read by the mean's
    divisor.""",
)
