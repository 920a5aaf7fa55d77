"""Sum and mean of an empty batch return the empty unreduced array."""

from ..problem import OPS
from ._policy import Policy

POLICY = Policy(
    name="empty_reduced_is_empty",
    kind=bool,
    stage="after",
    ops=OPS,
    doc="""Sum and mean of an empty batch return the empty unreduced array instead of a scalar. Read by
    the reduction.""",
)
