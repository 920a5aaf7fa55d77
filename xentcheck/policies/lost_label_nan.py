"""A label the dtype could not hold gives its row a NaN target (XLA's sparse kernel): NaN loss and gradient."""

from ._policy import Policy

POLICY = Policy(
    name="lost_label_nan",
    kind=bool,
    stage="core",
    ops=("softmax_ce", "categorical_ce", "nll"),
    doc="""With `labels_in_dtype`, a label the dtype cannot hold (it becomes inf: above 65519 in float16)
    is cast back to an integer outside `[0, C)`, and the binding fills that row's one-hot target with NaN
    rather than raising (TensorFlow's sparse softmax cross-entropy under XLA, `jit_compile=True`, adds
    NaN to the one-hot row of an out-of-range label): the row's loss is NaN, and so is its gradient but
    where a clip selects 0. Read where the oracle forms the dense target.""",
)
