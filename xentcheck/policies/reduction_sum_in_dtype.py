"""A reduction's sum accumulated element by element in the input dtype (NumPy on ml_dtypes)."""

from ._policy import Policy

POLICY = Policy(
    name="reduction_sum_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll"),
    doc="""`sum` and `mean` values: the unreduced losses, rounded to the input dtype, are summed one at a
    time in that dtype, each partial sum rounded (NumPy's sum of an ml_dtypes bfloat16 array: no pairwise
    summation, no wider accumulator), then divided: once the sum passes 256 times a typical loss, adding
    one rounds away (a sum of 1000 losses near 2 stops near 1536 in bfloat16). Read by the reduction.""",
)
