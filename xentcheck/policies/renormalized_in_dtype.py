"""The renormalised probabilities held in the input's dtype, which decides whether the clip passes a gradient."""

from ._policy import Policy

POLICY = Policy(
    name="renormalized_in_dtype",
    kind=bool,
    stage="core",
    ops=("categorical_ce",),
    doc="""With `renormalize = "before_clip"`: the probabilities divided by their sum are a tensor of the
    input's dtype (the sum accumulated wider and rounded, each quotient rounded), and the clip and the log
    take them as held: a probability just below the clip's lower bound whose quotient rounds onto the bound
    (float16 `1.19e-7` in a row summing to `1 + 4.8e-7`, whose sum rounds to 1) is not clipped, so its
    gradient passes the clip (a clamp's gradient includes its bounds) where the exact quotient's is cut
    (PyTorch's `output / sum`, then `torch.clip`). Read by the from-probabilities formula.""",
)
