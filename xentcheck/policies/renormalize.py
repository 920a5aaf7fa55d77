"""Probabilities divided by their sum, before or after the clip (Keras)."""

from ._policy import Policy

POLICY = Policy(
    name="renormalize",
    kind=str,
    stage="core",
    ops=("categorical_ce", "softmax_ce"),
    values=("before_clip", "after_clip"),
    doc="""`categorical_ce`: the probabilities are divided by their sum `"before_clip"` or `"after_clip"`
    (after the clip, as a softmax of `log q`: Keras's sparse path).""",
)
