"""A binary loss's label mean taken in float32 for the half dtypes: its sum overflows only past float32."""

from ._policy import Policy

POLICY = Policy(
    name="label_sum_in_float32",
    kind=bool,
    stage="after",
    ops=("sigmoid_bce", "bce"),
    doc="""With `sum_in_dtype`, a binary loss's mean over the last axis (`mean_last_axis`): for float16
    and bfloat16 inputs the label sum is held in float32 and the mean cast back to the input's dtype
    (Keras's `ops.mean` on the TensorFlow, JAX and PyTorch backends computes low-precision inputs in
    float32), so that sum overflows only past float32's largest value: never in float16, and in bfloat16
    only where it passes 3.4028e38, not bfloat16's 3.3895e38. Float32 and float64 sums are held in their
    own dtype. Read by the last-axis mean.""",
)
