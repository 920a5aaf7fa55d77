"""Index labels one-hot encoded and multiplied like a dense target (Keras's sparse loss on JAX/NumPy)."""

from ._policy import Policy

POLICY = Policy(
    name="one_hot_products",
    kind=bool,
    stage="core",
    ops=("softmax_ce",),
    doc="""`softmax_ce` with index targets: the labels are one-hot encoded and multiplied into the
    log-probabilities like a dense target, so `zero_times_inf` applies to them too (Keras's sparse loss on
    JAX and NumPy: `-sum(one_hot(y) * log_softmax(z))`); with `labels_in_dtype`, a label the dtype turns
    into inf encodes to a row of zeros.""",
)
