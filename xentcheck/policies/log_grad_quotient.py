"""The derivative of ``log q`` formed as the quotient upstream / q in the input dtype (JAX, PyTorch)."""

from ._policy import Policy

POLICY = Policy(
    name="log_grad_quotient",
    kind=bool,
    stage="core",
    ops=("bce", "categorical_ce", "softmax_ce", "sigmoid_bce"),
    doc="""`categorical_ce`, `bce`: the derivative of `log q` is the quotient `upstream / q` held in the
    input dtype (JAX's `g / x` and PyTorch's `grad / self`), not TensorFlow's `upstream * (1/q)`
    (`log_grad_in_dtype`, which it overrides): it overflows only where that quotient passes the dtype's
    largest finite value, so only at a class with target mass, and where the upstream gradient (the
    cotangent, a mean's `1/N`, the weights) is large enough: in float16 a clipped probability of about
    `1.2e-7` overflows for an upstream above `0.008`, a `q` of `6.7e-6` does not for an upstream of `0.24`.
    Where it overflows the gradient is inf and the renormalisation spreads inf/NaN over the row.""",
)
