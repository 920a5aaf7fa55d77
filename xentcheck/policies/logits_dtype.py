"""The logits converted to a narrower dtype before the loss: a logit beyond its range is +-inf there."""

from ..problem import overflowed
from ._policy import Flow, Policy


def _converted(flow: Flow) -> None:
    if flow.problem.op not in ("softmax_ce", "sigmoid_bce"):
        return
    # only the overflow: the rounding of the other logits is the compute dtype's (an entry's compute_dtype)
    flow.x = overflowed(flow.x, flow.conv.logits_dtype)


POLICY = Policy(
    name="logits_dtype",
    kind=str,
    stage="inputs",
    ops=("softmax_ce", "sigmoid_bce"),
    values=("float16", "bfloat16", "float32"),
    hook=_converted,
    doc="""`softmax_ce` / `sigmoid_bce`: the binding converts the logits to this dtype before anything else
    (Keras's NumPy backend turns float64 into float32), so a logit beyond that dtype's largest finite value
    is +-inf there, with the infinite inputs' behaviours (`inf_logit_nan`, the limit of a -inf logit where
    the target has mass), though the float64 logit is finite. Only the overflow is modelled: the rounding
    of the other logits is the precision an entry's `compute_dtype` allows.""",
)
