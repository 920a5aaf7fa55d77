"""linear_ce: the classifier's gradients are 0 when they are taken with the hidden states frozen."""

from ._policy import Policy

POLICY = Policy(
    name="frozen_input_no_weight_grad",
    kind=bool,
    stage="after",
    ops=("linear_ce",),
    doc="""`linear_ce`: the gradients of W and the bias are 0 (the API returns none) when they are taken
    with the hidden states X frozen (`requires_grad=False`, as when only the head is trained): the
    `[grad X, then W]` calling variant. Read by the linear_ce gradient (`xentcheck/linear_ce.py`).""",
)
