"""Plain products ``y * log p``: a class with no target mass at a log of 0 gives ``0 * -inf = NaN``."""

from ._policy import Policy

POLICY = Policy(
    name="zero_times_inf",
    kind=bool,
    stage="core",
    ops=("softmax_ce", "bce", "sigmoid_bce"),
    doc="""The loss is formed as plain products, not with the limit `0 * log 0 = 0`: `softmax_ce` with
    dense targets, `y_c * log p_c`, so a class with no target mass at a -inf logit gives `0 * -inf = NaN`
    (index targets are gathered, unless `one_hot_products`); `bce`, `t log p + (1 - t) log(1 - p)`, NaN
    in the loss and its gradient at `p = t` in {0, 1}.""",
)
