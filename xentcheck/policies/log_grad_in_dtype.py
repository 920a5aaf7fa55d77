"""The derivative of ``log q`` held in the input dtype (autodiff of a plain log)."""

from ._policy import Policy

POLICY = Policy(
    name="log_grad_in_dtype",
    kind=bool,
    stage="core",
    ops=("categorical_ce", "softmax_ce", "bce", "sigmoid_bce"),
    doc="""`categorical_ce`: the derivative of `log q` is the upstream gradient times `1/q` held in the
    input dtype (autodiff of a plain log), which overflows in float16 below `q = 2^-16`: the gradient turns
    inf/NaN where the exact one is finite. With `renormalize = "after_clip"` the log is taken of the
    clipped q and renormalised by a softmax (Keras's sparse path), so every class's gradient passes through
    its own `1/q`, and the gradient reaching `log q` there, `upstream * (softmax - onehot)`, is held in the
    dtype too (TensorFlow's half arithmetic): below float16's smallest subnormal it is 0, and `0 * inf` is
    NaN. `bce` (`sigmoid_bce` through `probabilities_dtype`): each log's derivative is the upstream
    gradient times `1/p` or `1/(1 - p)` held in the dtype (TensorFlow's Log gradient, `grad *
    reciprocal(x)`), so a probability on the clip's float16 lower bound `2^-23` gives an infinite
    gradient, and under `zero_times_inf` a term whose target weight is 0 gives `0 * inf = NaN` there.""",
)
