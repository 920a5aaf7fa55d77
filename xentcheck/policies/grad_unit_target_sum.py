"""The softmax gradient ``softmax(z) - y``, which assumes the target sums to 1."""

from ._policy import Policy

POLICY = Policy(
    name="grad_unit_target_sum",
    kind=bool,
    stage="core",
    ops=("softmax_ce",),
    doc="""`softmax_ce`: the gradient is `softmax(z) - y`, which assumes the target sums to 1 (the exact
    gradient is `sum(y) softmax(z) - y`).""",
)
