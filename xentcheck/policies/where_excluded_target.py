"""A ``where`` class mask that excludes a class holding target mass (optax)."""

from ._policy import Policy

POLICY = Policy(
    name="where_excluded_target",
    kind=str,
    stage="core",
    ops=("softmax_ce",),
    values=("dropped", "label_logit"),
    doc="""`softmax_ce` with a `where` class mask that excludes a class holding target mass
    (mathematically the loss is +inf: the target puts mass where the masked softmax puts none):
    `"dropped"`, the sum runs over the included classes only, so that mass is silently left out
    (optax.softmax_cross_entropy); `"label_logit"`, the loss is the included classes' logsumexp minus the
    label's own logit, and its gradient `softmax_W(z) - onehot(label)` (optax's integer-label loss).""",
)
