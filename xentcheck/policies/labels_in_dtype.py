"""Index labels passed through the floating dtype before use."""

from dataclasses import replace

import numpy as np

from ..problem import round_to
from ._policy import Flow, Policy


def _round_labels(flow: Flow) -> None:
    """The problem with its labels rounded to the dtype; a label that becomes inf is no class."""
    problem = flow.problem
    if problem.target_kind != "index":
        return
    rounded = round_to(problem.target, problem.dtype)
    # a label the dtype cannot hold becomes inf (float16 above 65519): cast back, it is no class, and
    # a one-hot encoding of it is a row of zeros, whose loss is 0 (as a planted invalid label's)
    lost = ~np.isfinite(rounded) & ~problem.ignored_rows()
    if np.any(lost) and flow.conv.lost_label_nan:  # the row's loss is NaN: any class stands in for it
        flow.lost_rows = lost
        rounded = np.where(lost, 0, rounded)
    elif np.any(lost) and flow.conv.one_hot_products and problem.invalid_target is None:
        rounded = np.where(lost, problem.num_classes, rounded)
        problem = replace(problem, invalid_target=problem.num_classes)
    flow.problem = replace(problem, target=rounded.astype(np.int64))


POLICY = Policy(
    name="labels_in_dtype",
    kind=bool,
    stage="inputs",
    ops=("softmax_ce", "categorical_ce", "nll"),
    hook=_round_labels,
    doc="""Index labels pass through the floating dtype before use, so a label the dtype cannot represent
    (above 2048 in float16, 256 in bfloat16) becomes the nearest one it can.""",
)
