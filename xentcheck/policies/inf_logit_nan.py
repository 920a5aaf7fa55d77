"""A +inf logit through the max shift in IEEE arithmetic (``inf - inf = NaN``) instead of to its limit."""

import numpy as np

from ..problem import round_to
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
    else:  # the +inf class's own term is inf - inf: NaN where the target has mass there
        flow.loss = np.where(np.any(pinf & (flow.a != 0), axis=-1), np.nan, flow.loss)
    at_class = pinf
    if footprint == "at_class":
        # logsumexp shifts a row whose maximum is +inf by 0, so its gradient exp(z) / sum exp(z) is
        # inf / inf = NaN at every class whose exp overflows the dtype: the +inf class and any z above
        # log(largest finite), 11.09 in float16, 88.7 in float32, 709.8 in float64
        with np.errstate(over="ignore"):
            at_class = pinf | (row[..., None] & np.isinf(round_to(np.exp(flow.x), flow.problem.dtype)))
    # a class where= excludes takes no part in the log-softmax: its gradient stays 0 (optax masks it)
    included = np.ones(flow.grad.shape, dtype=bool) if flow.problem.where is None else flow.problem.where
    trap = (at_class if footprint == "at_class" else row[..., None]) & counted[..., None] & included
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
    is its limit (a logsumexp that handles +inf) except where the label is on the +inf class
    (`inf - inf`), and the gradient is NaN at the +inf class and at every class whose `exp(z)` overflows
    the dtype (logsumexp shifts such a row by 0: `inf / inf`), 0 elsewhere (optax's integer-label loss).""",
)
