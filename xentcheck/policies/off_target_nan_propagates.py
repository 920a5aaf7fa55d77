"""A categorical loss summed over every class: a NaN where the target has no mass reaches the loss."""

import numpy as np

from ._policy import Flow, Policy


def _every_class_read(flow: Flow) -> None:
    if flow.problem.op not in ("categorical_ce", "softmax_ce", "nll"):
        return
    row = np.any(np.isnan(flow.x), axis=-1) & np.any(flow.a != 0, axis=-1)  # counted rows only
    flow.loss = np.where(row, np.nan, flow.loss)


POLICY = Policy(
    name="off_target_nan_propagates",
    kind=bool,
    stage="after",
    ops=("softmax_ce", "categorical_ce", "nll"),
    hook=_every_class_read,
    doc="""Categorical ops: the loss is summed over every class as `xlogy(t, p)` (or `t * log p`), and
    `xlogy(0, NaN)` is NaN, so a NaN input at a class where the target has no mass makes the row's loss
    NaN, where the mathematics reads only the classes with target mass (SciPy's `xlogy`).""",
)
