"""linear_ce: a mean over no counted row gives NaN gradients instead of 0."""

from ._policy import Policy

POLICY = Policy(
    name="empty_mean_nan_grad",
    kind=bool,
    stage="after",
    ops=("linear_ce",),
    doc="""`linear_ce`: a `mean` over no counted row (every target ignored, divisor 0) gives NaN gradients
    for every input (the `0 / 0` scale reaches them) instead of 0. Read by the linear_ce reduction
    (`xentcheck/linear_ce.py`).""",
)
