"""The log-softmax's exp-sum accumulated class by class in the input dtype (NumPy on ml_dtypes)."""

import numpy as np

from ..problem import sequential_sum
from ..stable import where0
from ._policy import Flow, Policy


def _sequential_exp_sum(flow: Flow) -> None:
    """The loss ``sum_c a_c (m + log S - z_c)`` with S accumulated class by class in the dtype: each exp
    term and each partial sum rounded, in class order."""
    if not flow.formed("softmax_ce"):
        return
    z, a, dtype = flow.x, flow.a, flow.problem.dtype
    m = np.max(z, axis=-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    total = sequential_sum(np.exp(z - m_safe), dtype, axis=-1)  # each term and partial sum rounded
    nll = m_safe + np.log(total)[..., None] - z
    terms = a * nll if flow.plain else where0(a != 0, a * nll)
    loss = np.sum(terms, axis=-1)
    if flow.problem.target_kind == "index":
        # an ignored row stays masked out, as the formula masks it (under plain products its 0 * inf is NaN)
        loss = np.where(flow.problem.ignored_rows(), 0.0, loss)
    flow.loss = loss


POLICY = Policy(
    name="exp_sum_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce",),
    hook=_sequential_exp_sum,
    doc="""`softmax_ce` values: the log-softmax's exp-sum is accumulated one class at a time in the input
    dtype, each partial sum rounded (NumPy's sum of an ml_dtypes bfloat16 array has no pairwise summation
    and no wider accumulator): over a large vocabulary the sum stalls once a term is below half an ulp of
    it (at 256 in bfloat16 for terms near 1), so the loss is too small.""",
)
