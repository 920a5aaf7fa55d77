"""With one class and spatial axes, the unreduced loss comes back without its last spatial axis."""

from ._policy import Policy

POLICY = Policy(
    name="squeeze_singleton_class",
    kind=bool,
    stage="after",
    ops=("softmax_ce", "categorical_ce", "nll"),
    doc="""Categorical ops with one class and spatial axes whose last one has length 1, (N, ..., 1, 1):
    the binding squeezes the class axis of length 1 and takes the last spatial axis for the classes
    (Keras's loss wrapper, `squeeze_or_expand_to_same_rank`), so the unreduced loss has the shape
    (N, ...) without that axis; its values, and the reduced ones, are unchanged (the squeezed axis
    holds one element). Read by the oracle's output shape.""",
)
