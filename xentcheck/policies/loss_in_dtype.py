"""The elementwise loss held in the input's dtype before and after the weights: past its largest value, inf."""

from ._policy import Policy

POLICY = Policy(
    name="loss_in_dtype",
    kind=bool,
    stage="after",
    ops=("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll"),
    doc="""The unweighted elementwise loss, and the loss after the class and sample weights multiply it,
    are each held in the input's dtype, so where either passes the dtype's largest finite value it is
    inf: a loss of 1.2e5 in float16 weighted by 0.5 is inf, though the weighted loss (6e4) is finite, and
    a weighted loss past the largest value makes a mean inf even when the batch sum is accumulated wider.
    Elsewhere it is the exact loss. Read by the weighting (`reference._class_weighted`,
    `reference._sample_weighted`).""",
)
