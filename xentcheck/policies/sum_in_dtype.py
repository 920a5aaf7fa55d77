"""A reduction's sum held in the input's dtype: past its largest finite value it is inf."""

from ._policy import Policy

POLICY = Policy(
    name="sum_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll"),
    doc="""The sums a reduction forms, the batch sum of `sum` and `mean` and a binary loss's sum over the
    last axis before it is averaged (`mean_last_axis`), are held in the input's dtype, so where the sum
    exceeds the dtype's largest finite value the result is inf, even when the mean itself is finite
    (PyTorch's `nll_loss` in float16: two rows of loss 40000 give a mean of inf).""",
)
