"""An ignored row's loss computed and masked out afterwards: a -inf logit there makes its gradient NaN."""

import numpy as np

from ._policy import Flow, Policy


def _masked_afterwards(flow: Flow) -> None:
    if not flow.formed("softmax_ce") or flow.problem.ignore_index is None:
        return
    trap = flow.problem.ignored_rows() & np.any(flow.x == -np.inf, axis=-1)
    flow.grad = np.where(trap[..., None], np.nan, flow.grad)


POLICY = Policy(
    name="ignored_row_nan_grad",
    kind=bool,
    stage="after",
    ops=("softmax_ce",),
    hook=_masked_afterwards,
    doc="""`softmax_ce` with `ignore_index`: an ignored row's loss is computed (its label replaced) and
    masked out afterwards, so where that row holds a -inf logit the masked loss's gradient is NaN across
    the row (`0 * inf`), instead of 0.""",
)
