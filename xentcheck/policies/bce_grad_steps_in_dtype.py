"""The floored BCE backward formed step by step in the dtype (PyTorch's CPU kernel on c10::Half)."""

from ._policy import Policy

POLICY = Policy(
    name="bce_grad_steps_in_dtype",
    kind=str,
    stage="core",
    ops=("bce",),
    values=("cotangent", "upstream"),
    doc="""`bce` with `grad_denominator_floor`: the backward forms `g (p - t)`, `(1 - p) p`, its floor and
    the quotient each rounded to the dtype (PyTorch's CPU kernel, whose every c10::Half operation rounds
    back to float16), where `g` is the gradient the kernel is handed: `"cotangent"`, the output's own
    (F.binary_cross_entropy applies its weight and a mean's 1/N after the kernel), or `"upstream"`, all
    that reaches the element's loss (a caller that reduces the unreduced loss itself, as Keras). Where `p`
    is a float16 subnormal, `g (p - t)` is one too and loses digits: with `p = 1.49e-6` (25 subnormal
    ulps), `t = 0` and `g = 0.8975`, `g p` is 22 ulps and the gradient 22/25 = 0.88 instead of 0.8975.""",
)
