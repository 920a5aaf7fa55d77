"""A clip differentiated as JAX's maximum and minimum: the upstream times 1, 1/2 at a bound, or 0."""

from ._policy import Policy

POLICY = Policy(
    name="clip_grad_product",
    kind=bool,
    stage="core",
    ops=("bce", "categorical_ce", "softmax_ce", "sigmoid_bce"),
    doc="""With `prob_clip`: the clip is `jnp.clip`, `minimum(maximum(q, lo), hi)`, whose gradient is the
    upstream gradient multiplied by JAX's factor for `maximum`/`minimum` (1 strictly inside the bounds,
    1/2 where `q` equals a bound, 0 outside), not selected (`where`, TensorFlow and PyTorch: the full
    gradient at a bound, 0 outside). So a probability equal to a bound gets half its gradient (in float16
    and bfloat16 `1 - 1e-7` rounds to 1, so `q = 1` is at the upper bound), and a clipped element whose
    upstream overflowed to inf gets `0 * inf = NaN` instead of 0.""",
)
