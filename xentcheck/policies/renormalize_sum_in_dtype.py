"""The renormalising sum of the probabilities accumulated class by class in the input dtype."""

from ._policy import Policy

POLICY = Policy(
    name="renormalize_sum_in_dtype",
    kind=bool,
    stage="core",
    ops=("categorical_ce", "softmax_ce"),
    doc="""With `renormalize = "before_clip"`, values: the sum the probabilities are divided by is
    accumulated one class at a time in the input dtype, each partial sum rounded, and each quotient
    rounded to the dtype (NumPy's sum of an ml_dtypes bfloat16 array): over a 32000-class row of
    probabilities near `3e-5` the sum stalls far below 1 in bfloat16, so every renormalised probability,
    and the loss's argument, is too large. The gradient is the exact renormalisation's.""",
)
