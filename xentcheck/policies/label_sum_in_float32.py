"""A binary loss's label mean taken in float32 for the half dtypes: its sum overflows only past float32."""

from ._policy import Policy

POLICY = Policy(
    name="label_sum_in_float32",
    kind=bool,
    stage="after",
    ops=("sigmoid_bce", "bce"),
    doc="""With `sum_in_dtype`, a binary loss's mean over the last axis (`mean_last_axis`): the label sum is
    held in float32 and the mean cast back to the input's dtype (Keras's `ops.mean` computes in
    `result_type(x.dtype, "float32")`: float32 for float16 and bfloat16 on the TensorFlow, JAX and PyTorch
    backends, and for float64 on PyTorch, whose float64 Keras averages in float32), so that sum overflows
    only past float32's largest value: never in float16, in bfloat16 only where it passes 3.4028e38, not
    bfloat16's 3.3895e38, and in float64 already there. Float32 sums are float32 either way. Read by the
    last-axis mean.""",
)
