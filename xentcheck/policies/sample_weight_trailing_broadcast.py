"""A per-example weight multiplied against a spatial loss as it is: NumPy broadcasting on the last axis."""

from dataclasses import replace

import numpy as np

from ._policy import Flow, Policy


def _trailing(flow: Flow) -> None:
    p = flow.problem
    w = p.sample_weight
    loss = p.x.shape[:-1] if p.categorical else p.x.shape
    if w is None or w.ndim != 1 or len(loss) < 2 or w.shape[0] != loss[-1]:
        return  # broadcasts as the mathematics does, or not at all (then the binding raises)
    flow.problem = replace(p, sample_weight=np.broadcast_to(w, loss).copy())


POLICY = Policy(
    name="sample_weight_trailing_broadcast",
    kind=bool,
    stage="inputs",
    ops=("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll"),
    hook=_trailing,
    doc="""A per-example `sample_weight` of shape (N,) is multiplied against an unreduced loss with
    spatial axes, (N, ..., d), as it is, without expanding it to (N, 1, ...): by NumPy's broadcasting it
    lines up with the last axis, so where d = N it weights position j of every example by the weight of
    example j, instead of example i by its own weight.""",
)
