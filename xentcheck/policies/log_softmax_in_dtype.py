"""The log-softmax held in the input dtype: where it is below the dtype's most negative finite value it is
-inf, so a finite logit far below its row's maximum gets an infinite loss term (or ``0 * -inf = NaN``)."""

import numpy as np

from ..problem import round_to
from ._policy import Flow, Policy


def _overflowed_log_softmax(flow: Flow) -> None:
    if not flow.formed("softmax_ce"):
        return
    z, a = flow.x, flow.a
    m = np.max(z, axis=-1, keepdims=True)
    finite_row = np.isfinite(m)  # a +inf or NaN row is inf_logit_nan's or NaN already
    m = np.where(finite_row, m, 0.0)
    lsm = (z - m) - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
    over = finite_row & np.isfinite(z) & (round_to(lsm, flow.conv.input_dtype or flow.problem.dtype) == -np.inf)
    # an ignored row is selected away before the loss (Keras zeroes its logits): it stays 0
    if flow.problem.target_kind == "index":
        over &= ~flow.problem.ignored_rows()[..., None]
    on = a != 0
    flow.loss = np.where(np.any(over & on, axis=-1), np.inf, flow.loss)
    if flow.plain:
        flow.loss = np.where(np.any(over & ~on, axis=-1), np.nan, flow.loss)


POLICY = Policy(
    name="log_softmax_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce",),
    hook=_overflowed_log_softmax,
    doc="""`softmax_ce` values: the log-softmax `z_c - lse(z)` is held in the input dtype (the shift
    `z - max(z)` formed in it, or the result rounded to it; `input_dtype`'s where that is set), so
    where it is below the dtype's most negative finite value (a finite logit more than 65504 below its
    row's maximum in float16, about 3.4e38 in bfloat16) it is -inf: the loss is +inf where the target
    has mass at that class, and with plain products (`zero_times_inf`, `one_hot_products`)
    `0 * -inf = NaN` where it has none, where the exact loss is finite. Elsewhere it is the exact
    loss.""",
)
