"""A ``where`` mask that excludes every class of a row (optax 0.2.5)."""

from ._policy import Policy

POLICY = Policy(
    name="where_empty_row",
    kind=str,
    stage="core",
    ops=("softmax_ce",),
    values=("lse_minus_logit",),
    doc="""`softmax_ce` with a `where` mask that excludes every class of a row (which then contributes
    nothing): `"lse_minus_logit"`, the row's loss is the logsumexp over no class (-inf) minus the label's
    logit, so -inf, and its gradient NaN across the row (optax 0.2.5's integer-label loss, before it
    masked such rows).""",
)
