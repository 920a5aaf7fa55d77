"""The sigmoid formed as 1 / (1 + exp(-z)), each step rounded to the dtype (Keras's NumPy backend)."""

from ._policy import Policy

POLICY = Policy(
    name="sigmoid_steps_in_dtype",
    kind=bool,
    stage="core",
    ops=("sigmoid_bce",),
    doc="""`sigmoid_bce` under `probabilities_dtype`: the binding forms the sigmoid as `1 / (1 + exp(-z))`
    with `exp(-z)`, the sum and the quotient each rounded to the dtype (Keras's NumPy backend), not the
    correctly rounded sigmoid: once `exp(-z)` is below half an ulp of 1 (`z` above about 5.5 in bfloat16,
    7.6 in float16), `1 + exp(-z)` is 1 and the probability exactly 1, a whole ulp above the correctly
    rounded `1 - 2^-8` (bfloat16), so `log(1 - p)` meets the clip's upper bound: a loss of 15.9 where the
    correctly rounded probability gives 5.5.""",
)
