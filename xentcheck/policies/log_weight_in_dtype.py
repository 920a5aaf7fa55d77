"""sigmoid_bce with pos_weight: the log weight's product with softplus(-z) held in the dtype."""

import numpy as np

from ..problem import round_to
from ..stable import softplus
from ._policy import Flow, Policy


def _held(flow: Flow) -> None:
    if not flow.formed("sigmoid_bce"):
        return
    p, z, t = flow.problem, flow.x, flow.y
    pw = p.pos_weight if p.pos_weight is not None else 1.0
    with np.errstate(all="ignore"):
        product = (1 + (pw - 1) * t) * softplus(-z)  # lw * softplus(-z), exact
        over = np.isfinite(z) & np.isinf(round_to(product, flow.conv.constants_dtype(p.dtype)))
    flow.loss = np.where(over, np.sign(product) * np.inf, flow.loss)


POLICY = Policy(
    name="log_weight_in_dtype",
    kind=bool,
    stage="after",
    ops=("sigmoid_bce",),
    hook=_held,
    doc="""`sigmoid_bce` values: the binding forms the loss as `(1 - t) z + lw softplus(-z)` with the log
    weight `lw = 1 + (pw - 1) t` (PyTorch's `binary_cross_entropy_with_logits`,
    `tf.nn.weighted_cross_entropy_with_logits`), the product `lw softplus(-z)` held in the input's dtype:
    where it passes the dtype's largest finite value (a logit near the dtype's most negative value with
    `lw > 1`) it is inf and so is the loss, though the loss `pw t softplus(-z) + (1 - t) softplus(z)` is
    finite (`z = -3e38`, `t = 0.5`, `pw = 1.5` in float32: the loss is 2.25e38, the product 3.75e38).
    Elsewhere it is the exact loss.""",
)
