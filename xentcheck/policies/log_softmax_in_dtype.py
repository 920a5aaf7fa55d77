"""The log-probabilities held in the input's dtype: past its largest finite value they are -inf."""

import numpy as np

from ..problem import round_to
from ..stable import neg_log_softmax
from ._policy import Flow, Policy


def _held(flow: Flow) -> None:
    if not flow.formed("softmax_ce") or flow.x.size == 0:
        return
    p, z, a = flow.problem, flow.x, flow.a  # z: the logits the formula took (a where mask applied)
    dtype = flow.conv.constants_dtype(p.dtype)
    nll = neg_log_softmax(z)  # exact (a +inf or all -inf row gives inf/NaN here and is left alone)
    over = np.isfinite(nll) & np.isinf(round_to(nll, dtype))  # the log-probability the dtype holds is -inf
    if p.where is not None:
        over &= p.where
    counted = ~p.ignored_rows() if p.ignore_index is not None else np.ones(over.shape[:-1], dtype=bool)
    mass = np.any(over & (a != 0), axis=-1) & counted  # a class with target mass: its term is +inf
    nan = np.any(over & (a == 0), axis=-1) & counted & flow.plain  # 0 * -inf as a plain product
    sign = np.sign(np.sum(np.where(over, a, 0.0), axis=-1))
    flow.loss = np.where(nan, np.nan, np.where(mass, sign * np.inf, flow.loss))


POLICY = Policy(
    name="log_softmax_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce",),
    hook=_held,
    doc="""`softmax_ce` values: the log-probabilities `z_c - lse(z)` are held in the input's dtype before
    they meet the target, so where `lse(z) - z_c` passes the dtype's largest finite value (a logit near
    the dtype's most negative value in a row whose maximum is large, or a spread of more than 65504 in
    float16) the log-probability is -inf: a class with target mass makes the row's loss +inf, and one
    without gives `0 * -inf = NaN` under plain products (`zero_times_inf`), though the loss is finite.
    Elsewhere it is the exact loss.""",
)
