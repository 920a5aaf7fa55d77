"""An ignored row's gradient taken through its log-softmax: NaN where that log-softmax is undefined."""

import numpy as np

from ._policy import Flow, Policy


def _through_log_softmax(flow: Flow) -> None:
    if not flow.formed("softmax_ce") or flow.problem.ignore_index is None:
        return
    x = flow.x
    undefined = np.any(np.isnan(x) | (x == np.inf), axis=-1) | np.all(x == -np.inf, axis=-1)
    trap = flow.problem.ignored_rows() & undefined
    flow.grad = np.where(trap[..., None], np.nan, flow.grad)


POLICY = Policy(
    name="ignored_row_undefined_nan_grad",
    kind=bool,
    stage="after",
    ops=("softmax_ce",),
    hook=_through_log_softmax,
    doc="""`softmax_ce` with `ignore_index`: the loss skips an ignored row, but the gradient still flows
    through that row's log-softmax (its upstream gradient is 0, and the log-softmax backward forms
    `g - softmax * sum(g)`), so where the row's log-softmax is NaN (a NaN or +inf logit, or every logit
    -inf) its gradient is NaN across the row (`0 * NaN`) instead of 0. A row with some -inf logits and a
    finite maximum is unaffected.""",
)
