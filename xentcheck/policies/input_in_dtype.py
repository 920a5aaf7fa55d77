"""The binding converts its input to a narrower dtype before the loss (Keras's NumPy backend: float64 to float32)."""

from ..problem import round_to
from ._policy import Flow, Policy


def _convert(flow: Flow) -> None:
    flow.x = round_to(flow.x, flow.conv.input_in_dtype)


POLICY = Policy(
    name="input_in_dtype",
    kind=str,
    stage="inputs",
    ops=("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll"),
    values=("float16", "bfloat16", "float32"),
    hook=_convert,
    doc="""The binding converts its input (logits or probabilities) to this dtype before the loss, so each
    value is rounded to it and a finite value beyond its range becomes +-inf (Keras's NumPy backend turns
    a float64 array into float32 in `convert_to_tensor`: a logit of 1e308 is +inf there, with what a +inf
    logit brings, e.g. `inf_logit_nan`). With `zero_times_inf` the log-softmax the products read is held
    in this dtype too.""",
)
