"""The binding's stable sigmoid-BCE formula evaluated as written at +-inf logits."""

import numpy as np

from ..stable import softplus
from ._policy import Flow, Policy

#: The stable sigmoid-BCE formulas frameworks document or implement, evaluated as written (IEEE
#: arithmetic): equal for finite logits, each with its own NaN at +-inf.
SIGMOID_FORMULAS = {
    # TensorFlow's documented max(x, 0) - x z + log(1 + exp(-|x|))
    "max_shift": lambda z, t: np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))),
    # (1 - t) z + softplus(-z) (PyTorch, tf.nn.weighted_cross_entropy_with_logits)
    "linear": lambda z, t: (1 - t) * z + softplus(-z),
    # -(t log sigmoid(z) + (1 - t) log sigmoid(-z)) as plain products (optax, the log_expit idiom)
    "products": lambda z, t: t * softplus(-z) + (1 - t) * softplus(z),
}


def _as_written(flow: Flow) -> None:
    if flow.formed("sigmoid_bce"):  # at z = +-inf, the binding's formula in IEEE arithmetic
        x, formula = flow.x, SIGMOID_FORMULAS[flow.conv.sigmoid_formula]
        flow.loss = np.where(np.isinf(x), formula(x, flow.y), flow.loss)


POLICY = Policy(
    name="sigmoid_formula",
    kind=str,
    stage="after",
    ops=("sigmoid_bce",),
    values=tuple(sorted(SIGMOID_FORMULAS)),
    hook=_as_written,
    doc="""`sigmoid_bce`: the binding's stable formula (`"max_shift"`, TensorFlow's documented
    `max(z, 0) - z t + log(1 + exp(-|z|))`; `"linear"`, `(1 - t) z + softplus(-z)`; `"products"`,
    `t softplus(-z) + (1 - t) softplus(z)`), which at a +-inf logit meets `inf - inf` or `0 * inf` where the
    limit is finite or infinite.""",
)
