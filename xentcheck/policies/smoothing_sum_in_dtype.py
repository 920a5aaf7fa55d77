"""Label smoothing's class sum of weighted log-probabilities held in the dtype before it is scaled by eps/C."""

import numpy as np

from ..problem import round_to
from ..stable import neg_log_softmax
from ._policy import Flow, Policy


def _held(flow: Flow) -> None:
    p = flow.problem
    if not flow.formed("softmax_ce") or p.target_kind != "index" or not p.label_smoothing or p.x.size == 0:
        return
    z, dtype = flow.x, flow.conv.constants_dtype(p.dtype)
    w = p.class_weight if p.class_weight is not None else np.ones(p.num_classes)
    nll = neg_log_softmax(z)  # -log_softmax, exact
    counted = p.valid_mask()
    s = np.where(counted, np.sum(w * nll, axis=-1), 0.0)  # the smoothing term's sum, before eps / C
    over = np.isfinite(s) & np.isinf(round_to(s, dtype))
    if p.reduction != "none":  # and the sum of those over the batch (smooth_loss.sum())
        total = np.sum(s)
        over |= counted & bool(np.isfinite(total) and np.isinf(round_to(total, dtype)))
    flow.loss = np.where(over, np.inf, flow.loss)


POLICY = Policy(
    name="smoothing_sum_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce",),
    hook=_held,
    doc="""`softmax_ce` values with index targets and label smoothing: the smoothing term is formed as the
    class sum `sum_c w_c (lse - z_c)` (class weights `w`, 1 without) and, reduced, its sum over the counted
    rows, each held in the input's dtype, and only then scaled by `eps / C` (PyTorch's `cross_entropy`), so
    where that sum passes the dtype's largest finite value the loss is inf, though the loss (which holds
    `eps / C` of it) is finite: float32 logits `[-1.5e38, -1.5e38, 1.5e38]` give a class sum of 6e38.
    Elsewhere it is the exact loss.""",
)
