"""The sigmoid formed as exp(z) / (1 + exp(z)), each step rounded to the dtype (TensorFlow's bfloat16 CPU kernel)."""

from ._policy import Policy

POLICY = Policy(
    name="sigmoid_quotient_steps_in_dtype",
    kind=bool,
    stage="core",
    ops=("sigmoid_bce",),
    doc="""`sigmoid_bce` under `probabilities_dtype`: the binding forms the sigmoid as `exp(z) / (1 + exp(z))`
    with `exp(z)`, the sum and the quotient each rounded to the dtype, and 1 where `exp(z)` overflows
    (Eigen's generic logistic, TensorFlow's CPU kernel for bfloat16), neither correctly rounded nor
    monotonic: in bfloat16 `sigmoid(5.5)` is `1 - 2^-8` but `sigmoid(5.75)` is exactly 1 (`1 + 324`
    rounds to 324, ties to even), where the correctly rounded value is `1 - 2^-8`; then `log(1 - p)` meets
    the clip, whose upper bound is 1 in bfloat16.""",
)
