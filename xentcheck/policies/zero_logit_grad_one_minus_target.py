"""The sigmoid-BCE gradient at a zero logit taken with the subgradient 0 of |z| and max(-z, 0)."""

import numpy as np

from ..problem import SMALLEST_NORMAL
from ._policy import Flow, Policy


def _subgradient_at_zero(flow: Flow) -> None:
    if flow.formed("sigmoid_bce"):
        # the kernels compute float16 in float32, where a float16 subnormal is a normal number: not flushed
        dtype = "float32" if flow.problem.dtype == "float16" else flow.problem.dtype
        flow.grad = np.where(np.abs(flow.x) < SMALLEST_NORMAL[dtype], 1 - flow.y, flow.grad)


POLICY = Policy(
    name="zero_logit_grad_one_minus_target",
    kind=bool,
    stage="after",
    ops=("sigmoid_bce",),
    hook=_subgradient_at_zero,
    doc="""`sigmoid_bce`: the binding differentiates `(1 - t) z + l (log1p(e^-|z|) + max(-z, 0))` with the
    subgradient 0 of `|z|` and of `max(-z, 0)` at `z = 0`, so its gradient there is `1 - t` instead of
    `1 - t - l / 2` (`tf.nn.weighted_cross_entropy_with_logits`); a subnormal logit counts as 0 (the CPU
    kernels flush subnormals to zero), except in float16, which they compute in float32, where a float16
    subnormal is a normal number.""",
)
