"""Each weighted per-element loss held in the input dtype before the reduction: past its range, +-inf."""

import numpy as np

from ..problem import round_to
from ._policy import Flow, Policy


def _held_losses(flow: Flow) -> None:
    held = round_to(flow.loss, flow.problem.dtype)
    flow.loss = np.where(np.isinf(held) & np.isfinite(flow.loss), held, flow.loss)


POLICY = Policy(
    name="weighted_loss_in_dtype",
    kind=bool,
    stage="after",
    ops=("nll", "softmax_ce"),
    hook=_held_losses,
    doc="""Each per-element loss, times its class weight, is formed in the input dtype before the
    reduction adds it (PyTorch's `nll_loss` CPU kernel: `-weight[t] * input[t]` in the input's type), so
    one past the dtype's largest finite value is +-inf there, and a +inf and a -inf among them (a
    log-probability input of either sign) sum to NaN where the exact sum is finite. The others keep
    their exact values (their rounding is within the bound).""",
)
