"""Categorical label smoothing divided by the size of the last axis, whatever the class axis."""

from ._policy import Flow, Policy


def _last_axis(flow: Flow) -> None:
    # in a channels-first layout (N, C, d1, ..., dk) the last axis the binding is handed is dk, not C
    if flow.problem.categorical and flow.problem.channels_first:
        flow.smoothing_classes = flow.problem.x.shape[-2]


POLICY = Policy(
    name="smoothing_last_axis",
    kind=bool,
    stage="inputs",
    ops=("softmax_ce", "categorical_ce", "nll"),
    hook=_last_axis,
    doc="""Categorical label smoothing divides `eps` by the size of the last axis the binding is handed,
    whatever its class axis: with a channels-first layout, the last spatial size.""",
)
