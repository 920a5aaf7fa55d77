"""From logits through probabilities: the softmax's exp-sum accumulated class by class in the dtype."""

from ._policy import Policy

POLICY = Policy(
    name="softmax_sum_in_dtype",
    kind=bool,
    stage="core",
    ops=("softmax_ce",),
    doc="""With `probabilities_dtype`, the binding's softmax sums its exp terms one class at a time, in
    class order, in the dtype of the probabilities, each term and partial sum rounded (PyTorch's CPU
    softmax over a row shorter than its vector width: ATen's `vec_reduce_all` adds the lanes in order).
    A term below half an ulp of the partial sum is lost, so a confident row's largest probability can be
    exactly 1 where the correctly rounded one is 1 - 2 ulps, and a clip at 1 - 1e-7 then cuts its
    gradient. Read by the from-probabilities path of `softmax_ce`.""",
)
