"""A masked mean formed as Keras forms it: each counted element weighted by total/valid, summed, over total."""

from ._policy import Policy

POLICY = Policy(
    name="masked_mean_scaled_weights",
    kind=bool,
    stage="after",
    ops=("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll"),
    doc="""A `mean` over the non-ignored elements (`mean_by = "valid_count"`) is formed as Keras's
    `apply_mask` forms it: each counted element's weight is multiplied by `total / valid` (the element count
    over the count of non-ignored ones), the weighted losses are summed and the sum divided by `total`. The
    same mean, but under `loss_in_dtype` and `sum_in_dtype` it is these scaled products and their sum that
    are held in the dtype, so they overflow `total / valid` times sooner (two float32 losses of 2e38 with
    one of four rows counted: 8e38). Read by the reduction.""",
)
