"""Half precision computed in float32 and rounded back (Inductor's CPU code)."""

from ..problem import OPS
from ._policy import Policy

POLICY = Policy(
    name="upcast_half",
    kind=bool,
    stage="core",
    ops=OPS,
    doc="""float16/bfloat16 inputs are computed in float32 and the result rounded back (as Inductor's CPU
    code does), so the policies' constants are float32 constants there and a result may overflow.""",
)
