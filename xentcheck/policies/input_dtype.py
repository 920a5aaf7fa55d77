"""The input converted to a narrower dtype before the loss: values beyond its range become +-inf."""

import numpy as np

from ..problem import round_to
from ._policy import Flow, Policy


def _held(flow: Flow) -> None:
    if flow.problem.op == "softmax_ce":
        held = round_to(flow.x, flow.conv.input_dtype)
        # only the overflow is the behaviour; the rounding of the others is compute_dtype's precision
        flow.x = np.where(np.isinf(held) & np.isfinite(flow.x), held, flow.x)


POLICY = Policy(
    name="input_dtype",
    kind=str,
    stage="inputs",
    ops=("softmax_ce",),
    values=("float16", "bfloat16", "float32"),
    hook=_held,
    doc="""`softmax_ce`: the binding converts the logits to this dtype before the loss (Keras's NumPy
    backend turns float64 into float32 in `convert_to_tensor`), so a finite logit beyond its range
    becomes +-inf there and the limit rules and the other policies in force (`inf_logit_nan`,
    `zero_times_inf`, `log_softmax_in_dtype`) act on the infinity: a logit of 1.7e308 is +inf in
    float32, and the row's loss is NaN under `inf_logit_nan = "row"`, where the exact loss is finite or
    1.7e308. The other logits keep their values (their rounding is a precision: `compute_dtype`).""",
)
