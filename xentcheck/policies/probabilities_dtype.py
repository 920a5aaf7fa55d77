"""From logits, probabilities formed in a dtype and the from-probabilities path taken (Keras)."""

from ..problem import DTYPES
from ._policy import Policy

POLICY = Policy(
    name="probabilities_dtype",
    kind=str,
    stage="core",
    ops=("softmax_ce", "sigmoid_bce", "bce", "categorical_ce"),
    values=("input", *DTYPES),
    doc="""`softmax_ce` / `sigmoid_bce`: from logits, the binding forms the probabilities (softmax or
    sigmoid) in this dtype (`"input"`: the input's) and takes the from-probabilities path with its
    policies (`prob_clip`, `renormalize`, ...): Keras's NumPy backend for sigmoid, and a Keras loss handed
    the output of an eager `tf.nn.softmax` with `from_logits=False`. The loss is that of the rounded
    probabilities, its gradient chained through the exact derivative. For the from-probabilities ops
    (`bce`, `categorical_ce`) a dtype name means the binding holds its input probabilities, and its
    constants (clip bounds), in that dtype (Keras's NumPy backend turns float64 into float32).""",
)
