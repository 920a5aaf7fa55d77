"""Probabilities clipped into ``[eps, 1 - eps]`` before the log (Keras, TensorFlow 1)."""

from ._policy import Policy

POLICY = Policy(
    name="prob_clip",
    kind=float,
    stage="core",
    ops=("bce", "categorical_ce", "softmax_ce", "sigmoid_bce"),
    doc="""Probabilities are clipped to `[prob_clip, 1 - prob_clip]` before the log (bounds rounded to the
    dtype of the policy's constants); a clipped probability gets no gradient. Read by the from-probabilities
    formulas (`bce`, `categorical_ce`, and the logits ops under `probabilities_dtype`).""",
)
