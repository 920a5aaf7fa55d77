"""A +inf logit through the max shift in IEEE arithmetic (``inf - inf = NaN``) instead of to its limit."""

import numpy as np

from ._policy import Flow, Policy


def _nan_footprint(flow: Flow) -> None:
    if not flow.formed("softmax_ce"):
        return
    footprint = flow.conv.inf_logit_nan
    pinf = flow.x == np.inf
    row = np.any(pinf, axis=-1)
    counted = np.any(flow.a != 0, axis=-1)  # an ignored row (no target mass) stays 0
    if footprint == "row":
        flow.loss = np.where(row & counted, np.nan, flow.loss)
    elif footprint == "target_mass":
        flow.loss = np.where(np.any(pinf & (flow.a != 0), axis=-1), np.nan, flow.loss)
    at_class = footprint == "at_class"
    # a class where= excludes takes no part in the log-softmax: its gradient stays 0 (optax masks it)
    included = np.ones(flow.grad.shape, dtype=bool) if flow.problem.where is None else flow.problem.where
    trap = (pinf if at_class else row[..., None]) & counted[..., None] & included
    flow.grad = np.where(trap, np.nan, flow.grad)


POLICY = Policy(
    name="inf_logit_nan",
    kind=str,
    stage="after",
    ops=("softmax_ce",),
    values=("row", "target_mass", "at_class"),
    hook=_nan_footprint,
    doc="""`softmax_ce`: a +inf logit goes through the max shift in IEEE arithmetic instead of to its limit
    (`inf - inf` = NaN), with one of three footprints: `"row"`, the whole row's log-softmax is NaN, so the
    row's loss (whatever its label) and gradient are NaN (PyTorch, TensorFlow, jax.nn.log_softmax);
    `"target_mass"`, only the +inf class's log-softmax is NaN (the others are -inf), so the loss is NaN
    where the target has mass there and the gradient is NaN across the row (SciPy); `"at_class"`, the loss
    is its limit (a logsumexp that handles +inf) and the gradient is NaN at the +inf class alone (optax's
    integer-label loss).""",
)
