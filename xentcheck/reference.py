"""The reference oracle: exact value and gradient of every op with every option, in float64.

Formulations are the stable ones (log-sum-exp with the max shift, softplus with ``log1p(exp(-|z|))``),
with the limit convention ``0 * log 0 = 0`` for targets that put no weight on a class. Infinities and
NaN come out where mathematics gives them and are never cleaned up.

Besides each value and gradient element the oracle returns its *error scale* ``(A, S)``: ``A`` is the
sum of the magnitudes of the terms a stable algorithm adds to form that element and ``S`` the part
exposed to the error of summing many terms. :mod:`xentcheck.tolerance` turns them into a bound.

A :class:`Convention` carries what a binding documents about itself: how its mean divides
(by count or by weight sum), whether its per-example loss averages the last axis, and the numerical
*policies* some APIs apply (probability clipping, log clamping, a floored gradient denominator).
``MATH`` is the plain mathematics.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .problem import Problem, round_to

MEAN_BY = ("count", "valid_count", "weight_sum", "nonzero_weight_count")


@dataclass(frozen=True)
class Convention:
    """A binding's documented semantics, beyond the op itself.

    mean_by: what ``mean`` divides by: the number of output elements, of non-ignored elements,
        the sum of the per-example weights, or the number of non-zero weights.
    mean_last_axis: binary ops only: the per-example loss is the mean over the last axis.
    prob_clip: clip probabilities to ``[prob_clip, 1 - prob_clip]`` (bounds rounded to the dtype).
    renormalize: categorical_ce: divide probabilities by their sum ``"before_clip"`` or ``"after_clip"``.
    log_clamp: bce: ``log(p)`` and ``log(1 - p)`` are clamped from below at this value.
    mean_divisor_epsilon: a mean over the non-ignored elements divides by their count plus this
        (Keras 3 before keras#21908: ``total / (valid + epsilon)`` mask weights).
    log_epsilon: bce: the logs are ``log(p + e)`` and ``log(1 - p + e)`` (e rounded to the dtype), as
        Keras 2 computes them after clipping.
    zero_times_inf: softmax_ce with dense targets: the loss is the plain product ``y_c * log p_c``, so a
        class with no target mass at a -inf logit gives ``0 * -inf = NaN`` instead of the limit 0.
    empty_mean_zero: a mean over nothing (divisor 0) is 0 instead of 0/0 = NaN.
    empty_reduced_is_empty: sum and mean of an empty batch return the empty unreduced array.
    grad_denominator_floor: bce: the gradient is ``(p - t) / max(p (1 - p), floor)`` (floor rounded to
        the dtype, as a C++ constant converted to the element type: 1e-12 is 0 in float16).
    labels_in_dtype: index labels pass through the floating dtype before use, so a label the dtype
        cannot represent (above 2048 in float16, 256 in bfloat16) becomes the nearest one it can.
    zero_times_inf also covers bce: ``t log p + (1 - t) log(1 - p)`` as plain products.
    upcast_half: float16/bfloat16 inputs are computed in float32 and the result rounded back (as
        Inductor's CPU code does), so the policies' constants are float32 constants there.
    grad_unit_target_sum: softmax_ce: the gradient is ``softmax(z) - y``, which assumes the target sums
        to 1 (the exact gradient is ``sum(y) softmax(z) - y``).
    inf_logit_nan: softmax_ce: a +inf logit goes through the max shift in IEEE arithmetic instead of to
        its limit (``inf - inf`` = NaN), with one of three footprints: ``"row"``, the whole row's
        log-softmax is NaN, so the row's loss (whatever its label) and gradient are NaN (PyTorch,
        TensorFlow, jax.nn.log_softmax); ``"target_mass"``, only the +inf class's log-softmax is NaN
        (the others are -inf), so the loss is NaN where the target has mass there and the gradient is
        NaN across the row (SciPy); ``"at_class"``, the loss is its limit (a logsumexp that handles
        +inf) and the gradient is NaN at the +inf class alone (optax's integer-label loss).
    sigmoid_formula: sigmoid_bce: the binding's stable formula (a key of ``SIGMOID_FORMULAS``), which
        at a +-inf logit meets ``inf - inf`` or ``0 * inf`` where the limit is finite or infinite.
    log_grad_in_dtype: categorical_ce: the derivative of ``log q`` is the upstream gradient times ``1/q``
        held in the input dtype (autodiff of a plain log), which overflows in float16 below
        ``q = 2^-16``: the gradient turns inf/NaN where the exact one is finite. With
        ``renormalize = "after_clip"`` the log is taken of the clipped q and renormalised by a softmax
        (Keras's sparse path), so every class's gradient passes through its own ``1/q``.
    smoothing_last_axis: categorical label smoothing divides ``eps`` by the size of the last axis the
        binding is handed, whatever its class axis: with a channels-first layout, the last spatial size.
    ignored_row_nan_grad: softmax_ce with ignore_index: an ignored row's loss is computed (its
        label replaced) and masked out afterwards, so where that row holds a -inf logit the masked loss's
        gradient is NaN across the row (0 * inf), instead of 0.
    where_excluded_target: softmax_ce with a ``where`` class mask that excludes a class holding target
        mass (mathematically the loss is +inf: the target puts mass where the masked softmax puts none):
        ``"dropped"``, the sum runs over the included classes only, so that mass is silently left out
        (optax.softmax_cross_entropy); ``"label_logit"``, the loss is the included classes' logsumexp
        minus the label's own logit, and its gradient ``softmax_W(z) - onehot(label)`` (optax's
        integer-label loss).
    where_empty_row: softmax_ce with a ``where`` mask that excludes every class of a row (which then
        contributes nothing): ``"lse_minus_logit"``, the row's loss is the logsumexp over no class
        (-inf) minus the label's logit, so -inf, and its gradient NaN across the row (optax 0.2.5's
        integer-label loss, before it masked such rows).
    one_hot_products: softmax_ce with index targets: the labels are one-hot encoded and multiplied
        into the log-probabilities like a dense target, so ``zero_times_inf`` applies to them too
        (Keras's sparse loss on JAX and NumPy: ``-sum(one_hot(y) * log_softmax(z))``).
    probabilities_dtype: softmax_ce / sigmoid_bce: from logits, the binding forms the probabilities
        (softmax or sigmoid) in this dtype (``"input"``: the input's) and takes the from-probabilities
        path with its policies (``prob_clip``, ``renormalize``, ...): Keras's NumPy backend for sigmoid,
        and a Keras loss handed the output of an eager ``tf.nn.softmax`` with ``from_logits=False``. The
        loss is that of the rounded probabilities, its gradient chained through the exact derivative.
        For the from-probabilities ops (bce, categorical_ce) a dtype name means the binding holds its
        input probabilities, and its constants (clip bounds), in that dtype (Keras's NumPy backend turns
        float64 into float32).
    exp_sum_in_dtype: softmax_ce values: the log-softmax's exp-sum is accumulated one class at a time
        in the input dtype, each partial sum rounded (NumPy's sum of an ml_dtypes bfloat16 array has no
        pairwise summation and no wider accumulator): over a large vocabulary the sum stalls once a
        term is below half an ulp of it (at 256 in bfloat16 for terms near 1), so the loss is too small.
    empty_mean_nan_grad: linear_ce: a ``mean`` over no counted row (every target ignored, divisor 0)
        gives NaN gradients for every input (the 0 / 0 scale reaches them) instead of 0.
    """

    mean_by: str = "count"
    mean_last_axis: bool = False
    prob_clip: float | None = None
    renormalize: str | None = None
    log_clamp: float | None = None
    log_epsilon: float | None = None
    mean_divisor_epsilon: float | None = None
    grad_denominator_floor: float | None = None
    zero_times_inf: bool | None = None
    empty_mean_zero: bool | None = None
    empty_reduced_is_empty: bool | None = None
    labels_in_dtype: bool | None = None
    upcast_half: bool | None = None
    grad_unit_target_sum: bool | None = None
    inf_logit_nan: str | None = None
    sigmoid_formula: str | None = None
    log_grad_in_dtype: bool | None = None
    smoothing_last_axis: bool | None = None
    ignored_row_nan_grad: bool | None = None
    where_excluded_target: str | None = None
    where_empty_row: str | None = None
    one_hot_products: bool | None = None
    probabilities_dtype: str | None = None
    exp_sum_in_dtype: bool | None = None
    empty_mean_nan_grad: bool | None = None

    def constants_dtype(self, dtype: str) -> str:
        """The dtype a policy's constants (clip bounds, floors) are rounded to for inputs in ``dtype``."""
        if self.probabilities_dtype not in (None, "input"):
            return self.probabilities_dtype
        return "float32" if self.upcast_half and dtype in ("float16", "bfloat16") else dtype

    def policies(self) -> dict:
        """The numerical policies in force (those that change the mathematics), by name."""
        return {n: getattr(self, n) for n in POLICIES if getattr(self, n) is not None}


#: the Convention fields that are numerical policies (every field but what the binding's mean divides by)
POLICIES = tuple(f.name for f in fields(Convention) if f.name not in ("mean_by", "mean_last_axis"))
MATH = Convention()


@dataclass(frozen=True)
class Evaluation:
    """The oracle's answer for one problem under one convention.

    ``value`` has the binding's output shape (per-example, or a scalar when reduced); ``grad`` is the
    vector-Jacobian product of ``cotangent`` (or of 1 for a reduced scalar) with respect to ``x``.
    ``*_scale`` are ``(A, S)`` pairs of the same shapes, for :func:`xentcheck.tolerance.bound`.
    """

    value: np.ndarray
    grad: np.ndarray
    value_scale: tuple[np.ndarray, np.ndarray]
    grad_scale: tuple[np.ndarray, np.ndarray]


def output_shape(problem: Problem, conv: Convention = MATH) -> tuple[int, ...]:
    """Shape of the unreduced output a binding with this convention returns."""
    if problem.categorical or conv.mean_last_axis:
        return tuple(problem.x.shape[:-1])
    return tuple(problem.x.shape)


def _where0(cond: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` where ``cond`` holds, else exactly 0: the ``0 * inf = 0`` limit convention."""
    return np.where(cond, value, 0.0)


def _softmax_ce(z: np.ndarray, a: np.ndarray, plain_product: bool = False, unit_target_sum: bool = False,
                summed: np.ndarray | None = None):
    """l = sum_c a_c (lse(z) - z_c) and its gradient (sum a) p - a, per row, with error scales.
    ``summed``: the classes the binding's sum runs over (a ``where`` mask), where a plain product
    applies; the others are left out of the sum."""
    m = np.max(z, axis=-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)  # all -inf or +inf rows: let inf/NaN arise naturally
    e = np.exp(z - m_safe)
    s = np.sum(e, axis=-1, keepdims=True)
    # log S = log1p(sum of the non-max terms): exact in relative terms when one class dominates, so a
    # confident loss like log(1 + e^-60) keeps its digits instead of cancelling in lse - z_max.
    rest = e.copy()
    np.put_along_axis(rest, np.argmax(z, axis=-1)[..., None], 0.0, axis=-1)
    log_s = np.where(np.isfinite(m), np.log1p(np.sum(rest, axis=-1, keepdims=True)), np.log(s))
    nll = (m_safe - z) + log_s  # lse - z_c, without forming lse (which would cancel for the max class)
    # A row with k logits at +inf: the limit puts mass 1/k on each (lse - z_c = log k there, +inf elsewhere).
    pinf = z == np.inf
    k = np.sum(pinf, axis=-1, keepdims=True)
    nll = np.where(k > 0, np.where(pinf, np.log(np.maximum(k, 1)), np.inf), nll)
    on = a != 0
    terms = _where0(on, a * nll)
    if plain_product:
        terms = a * nll if summed is None else np.where(summed, a * nll, terms)
    loss = np.sum(terms, axis=-1)
    asum = np.ones_like(k, dtype=np.float64) if unit_target_sum else np.sum(a, axis=-1, keepdims=True)
    p = np.exp(-nll)
    grad = asum * p - a
    c = z.shape[-1]
    abs_a = np.abs(a)
    mag = np.abs(m_safe) + np.abs(log_s)
    # A: |lse| + |z_c| for every weighted class; S: the 2C u error of the C-term exp-sum (inside log).
    va = np.sum(_where0(on, abs_a * (mag + np.abs(z))), axis=-1)
    vs = 2 * c * np.sum(abs_a, axis=-1)
    ga = np.abs(asum) * p * (1 + np.abs(_where0(np.isfinite(z), z)) + mag) + abs_a
    gs = 2 * c * np.abs(asum) * p
    return loss, grad, (va, vs), (ga, gs)


def _loss_with_exp_sum_in_dtype(z: np.ndarray, a: np.ndarray, dtype: str, plain_product: bool) -> np.ndarray:
    """sum_c a_c (m + log S - z_c) with S accumulated class by class in ``dtype`` (policy
    ``exp_sum_in_dtype``): each exp term and each partial sum rounded to the dtype, in class order."""
    m = np.max(z, axis=-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    e = round_to(np.exp(z - m_safe), dtype)
    total = np.zeros(z.shape[:-1])
    for k in range(z.shape[-1]):  # sequential on purpose: that is the policy
        total = round_to(total + e[..., k], dtype)
    nll = m_safe + np.log(total)[..., None] - z
    terms = a * nll if plain_product else _where0(a != 0, a * nll)
    return np.sum(terms, axis=-1)


def _where_classes(problem: Problem, conv: Convention, a: np.ndarray, loss, grad, vsc, gsc):
    """softmax_ce under a ``where`` class mask, after :func:`_softmax_ce` ran on the masked logits: the
    loss does not depend on an excluded logit (gradient 0 there), and a row with no class included
    contributes nothing (loss and gradient 0). Under ``label_logit`` a row whose target class is
    excluded gets the included classes' logsumexp minus the label's logit."""
    inc = problem.where
    label_logit = conv.where_excluded_target == "label_logit"
    # _softmax_ce ran on the masked logits: its gradient (sum a) softmax_W(z) - a is label_logit's
    # already, the label's own -a included; otherwise an excluded logit gets none
    kept = inc | (a != 0) if label_logit else inc
    grad = np.where(kept, grad, 0.0)
    gsc = (np.where(kept, gsc[0], 0.0), np.where(kept, gsc[1], 0.0))
    if label_logit:
        outside = np.any(~inc & (a != 0), axis=-1) & np.any(inc, axis=-1)
        z = np.where(inc, problem.x, -np.inf)
        m = np.max(z, axis=-1, keepdims=True)
        m = np.where(np.isfinite(m), m, 0.0)
        lse = (m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))[..., 0]
        label_logits = np.sum(np.where(a != 0, a * problem.x, 0.0), axis=-1)
        loss = np.where(outside, np.sum(a, axis=-1) * lse - label_logits, loss)
        vsc = (np.where(outside, np.abs(lse) + np.abs(label_logits), vsc[0]), vsc[1])
    empty = ~np.any(inc, axis=-1)
    unmasked = conv.where_empty_row == "lse_minus_logit"
    loss = np.where(empty, -np.inf if unmasked else 0.0, loss)
    grad = np.where(empty[..., None], np.nan if unmasked else 0.0, grad)
    vsc = (np.where(empty, 0.0, vsc[0]), np.where(empty, 0.0, vsc[1]))
    gsc = (np.where(empty[..., None], 0.0, gsc[0]), np.where(empty[..., None], 0.0, gsc[1]))
    return loss, grad, vsc, gsc


def _clip_bounds(conv: Convention, dtype: str) -> tuple[float, float]:
    eps = conv.prob_clip
    return float(round_to(eps, dtype)), float(round_to(1.0 - eps, dtype))


def _categorical_ce(p: np.ndarray, a: np.ndarray, conv: Convention, dtype: str):
    """l = -sum_c a_c log q_c with q the probabilities after the convention's policies."""
    steps = []  # (kind, data) in forward order, for the backward pass
    q = p
    if conv.renormalize == "before_clip":
        r = np.sum(q, axis=-1, keepdims=True)
        q = q / r
        steps.append(("renorm", (q, r)))
    if conv.prob_clip is not None:
        lo, hi = _clip_bounds(conv, dtype)
        inside = (q >= lo) & (q <= hi)
        q = np.clip(q, lo, hi)
        steps.append(("clip", inside))
    if conv.renormalize == "after_clip":
        r = np.sum(q, axis=-1, keepdims=True)
        q = q / r
        steps.append(("renorm", (q, r)))
    on = a != 0
    logq = np.log(q)
    loss = -np.sum(_where0(on, a * logq), axis=-1)
    # the log of the renormalised q (renormalize before the clip, or none): its gradient is formed here;
    # after the clip, the renormalisation runs inside a softmax of log q, so the reciprocal applies below
    if conv.log_grad_in_dtype and conv.renormalize != "after_clip":
        # d log q = upstream * (1/q), the reciprocal held in the dtype (may be inf)
        with np.errstate(over="ignore", invalid="ignore"):
            grad = -a * round_to(1 / q, dtype)
    else:
        grad = _where0(on, -a / q)
    abs_a = np.abs(a)
    ga = np.abs(grad)
    gs = np.zeros_like(grad)
    for kind, data in reversed(steps):
        if kind == "clip":
            grad = _where0(data, grad)
            ga = _where0(data, ga)
            gs = _where0(data, gs)
        else:  # q = v / sum(v): g_in = (g_out - sum_k g_out_k q_k) / sum(v)
            qn, r = data
            dot = np.sum(_where0(qn != 0, grad * qn), axis=-1, keepdims=True)
            grad = (grad - dot) / r
            if conv.log_grad_in_dtype and conv.renormalize == "after_clip":
                # Keras's sparse path: softmax cross-entropy on log q, whose gradient g_log = q grad
                # reaches q as g_log * (1/q) with the reciprocal in the dtype (inf below 2^-16 in float16)
                qin = qn * r
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    grad = (grad * qin) * round_to(1 / qin, dtype)
            # the renormalisation may run in log space (Keras: a softmax of log q), rounding each log q
            ga = (ga + np.abs(dot) * (1 + np.abs(np.log(np.where(qn > 0, qn, 1.0))))) / r
            gs = gs / r + p.shape[-1] * np.abs(dot) / r
    c = p.shape[-1]
    va = np.sum(_where0(on, abs_a * (1 + np.abs(logq))), axis=-1)
    vs = c * va
    return loss, grad, (va, vs), (ga, gs)


def _nll(x: np.ndarray, a: np.ndarray):
    """l = -sum_c a_c x_c for given log-probabilities x (they need not normalise): one product per class
    with target mass, so the error scale is that product's magnitude; the gradient -a is exact."""
    on = a != 0
    loss = -np.sum(_where0(on, a * x), axis=-1)
    va = np.sum(_where0(on, np.abs(a * x)), axis=-1)
    return loss, -a + 0.0, (va, np.zeros_like(va)), (np.abs(a), np.zeros_like(a))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


#: The stable sigmoid-BCE formulas frameworks document or implement, evaluated as written (IEEE
#: arithmetic): equal for finite logits, each with its own NaN at +-inf.
SIGMOID_FORMULAS = {
    # TensorFlow's documented max(x, 0) - x z + log(1 + exp(-|x|))
    "max_shift": lambda z, t: np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))),
    # (1 - t) z + softplus(-z) (PyTorch, tf.nn.weighted_cross_entropy_with_logits)
    "linear": lambda z, t: (1 - t) * z + _softplus(-z),
    # -(t log sigmoid(z) + (1 - t) log sigmoid(-z)) as plain products (optax, the log_expit idiom)
    "products": lambda z, t: t * _softplus(-z) + (1 - t) * _softplus(z),
}


def _sigmoid_bce(z: np.ndarray, t: np.ndarray, pw: np.ndarray):
    """l = pw t softplus(-z) + (1 - t) softplus(z): exact in every limit, including z = +-inf."""
    sp_neg, sp_pos = _softplus(-z), _softplus(z)
    loss = _where0(t != 0, pw * t * sp_neg) + _where0(t != 1, (1 - t) * sp_pos)
    sig_neg, sig_pos = np.exp(-sp_pos), np.exp(-sp_neg)  # sigmoid(-z), sigmoid(z)
    # (1 - t) - (1 + (pw - 1) t) sigmoid(-z), rewritten without the cancellation of 1 - sigmoid(-z)
    grad = _where0(t != 1, (1 - t) * sig_pos) - _where0(t != 0, pw * t * sig_neg)
    az = np.abs(_where0(np.isfinite(z), z))
    # A covers both documented stable forms: max(z,0) - z t + log1p(e^-|z|) and
    # (1 - t) z + (1 + (pw - 1) t)(log1p(e^-|z|) + max(-z, 0)).
    va = az * (1 + np.abs(t)) + (1 + np.abs(pw - 1) * np.abs(t)) * sp_neg + np.abs(pw * t) * sp_neg
    # gradient A covers (1 - t) - (1 + (pw - 1) t) sigmoid(-z) and sigmoid(z) - t (and its pos_weight form)
    ga = np.abs(1 - t) + np.abs(t) * (1 + np.abs(pw - 1)) + np.abs(1 + (pw - 1) * t) * sig_neg + sig_pos
    return loss, grad, (va, np.zeros_like(va)), (ga, np.zeros_like(ga))


def _bce(p: np.ndarray, t: np.ndarray, conv: Convention, dtype: str, t_rounded: bool = False):
    """l = -(t log p + (1 - t) log(1 - p)) under the clipping / log-clamping policies.

    ``t_rounded``: the binding forms ``t`` itself (label smoothing), so ``t`` carries a rounding error
    that ``1 - t`` amplifies; the error scales include its effect (dl/dt and dg/dt times |t|)."""
    q, inside = p, np.ones(p.shape, dtype=bool)
    if conv.prob_clip is not None:
        lo, hi = _clip_bounds(conv, dtype)
        inside = (p >= lo) & (p <= hi)
        q = np.clip(p, lo, hi)
    e = 0.0 if conv.log_epsilon is None else round_to(conv.log_epsilon, dtype)
    # (1 - q) + e, in that order: 1 - q is exact for q >= 1/2, where -q + e would cancel
    log1, log0 = (np.log(q + e), np.log((1 - q) + e)) if e else (np.log(q), np.log1p(-q))
    if conv.log_clamp is not None:
        log1, log0 = np.maximum(log1, conv.log_clamp), np.maximum(log0, conv.log_clamp)
    if conv.zero_times_inf:  # plain products: 0 * log 0 = NaN, in the loss and in its gradient
        loss = -(t * log1 + (1 - t) * log0)
    else:
        loss = -(_where0(t != 0, t * log1) + _where0(t != 1, (1 - t) * log0))
    if conv.grad_denominator_floor is not None:
        den = np.maximum(q * (1 - q), round_to(conv.grad_denominator_floor, dtype))
        grad = (q - t) / den
        ga = (np.abs(q) + np.abs(t)) / den
    elif e:
        r1, r0 = 1 / (q + e), 1 / ((1 - q) + e)
        with np.errstate(over="ignore", invalid="ignore"):
            if conv.zero_times_inf:  # the reciprocals as the dtype holds them, in plain products: 0 * inf = NaN
                r1, r0 = round_to(r1, dtype), round_to(r0, dtype)
            grad = -t * r1 + (1 - t) * r0
        ga = np.abs(t) * np.abs(r1) + np.abs(1 - t) * np.abs(r0)
    elif conv.zero_times_inf:
        grad = -t * (1 / q) + (1 - t) * (1 / (1 - q))
        ga = np.abs(t) / q + np.abs(1 - t) / (1 - q)
    else:
        grad = _where0(t != 0, -t / q) + _where0(t != 1, (1 - t) / (1 - q))
        ga = _where0(t != 0, np.abs(t / q)) + _where0(t != 1, np.abs((1 - t) / (1 - q)))
    grad, ga = _where0(inside, grad), _where0(inside, ga)
    va = _where0(t != 0, np.abs(t) * (1 + np.abs(log1))) + _where0(t != 1, np.abs(1 - t) * (1 + np.abs(log0)))
    if t_rounded:
        va = va + np.abs(t) * np.abs(log1 - log0)
        ga = ga + _where0(inside, np.abs(t) * (1 / q + 1 / (1 - q)))
    return loss, grad, (va, np.zeros_like(va)), (ga, np.zeros_like(ga))


def _via_probabilities(z: np.ndarray, a: np.ndarray, conv: Convention, dtype: str, categorical: bool):
    """The from-probabilities loss of ``softmax(z)`` / ``sigmoid(z)`` rounded to the policy's dtype
    (``probabilities_dtype``; ``"input"``: ``dtype``). The binding's own softmax may differ from the
    correctly rounded one by an ulp, so the value's error scale includes that rounding: |dl/dp| |p| per
    probability."""
    if conv.probabilities_dtype != "input":
        dtype = conv.probabilities_dtype
    cdtype = conv.constants_dtype(dtype)
    with np.errstate(all="ignore"):
        if categorical:
            e = np.exp(z - np.max(z, axis=-1, keepdims=True))
            p = round_to(e / np.sum(e, axis=-1, keepdims=True), dtype)
            loss, gp, (va, vs), (ga, gs) = _categorical_ce(p, a, conv, cdtype)
            va = va + np.sum(np.abs(p) * ga, axis=-1)
            # d softmax: g_z = p (g_p - sum_k p_k g_p,k)
            dot = np.sum(_where0(p != 0, p * gp), axis=-1, keepdims=True)
            grad = p * (gp - dot)
            adot = np.sum(p * ga, axis=-1, keepdims=True)
            return loss, grad, (va, vs), (p * (ga + adot) + np.abs(grad), p * (gs + adot))
        p = round_to(np.exp(-_softplus(-z)), dtype)  # sigmoid(z), as _sigmoid_bce forms it
        loss, gp, (va, vs), (ga, gs) = _bce(p, a, conv, cdtype)
        d = p * (1 - p)
        return loss, gp * d, (va + np.abs(p) * ga, vs), (ga * d + np.abs(gp * d), gs * d)


def per_example_weight(problem: Problem) -> np.ndarray:
    """omega_i: the weight each unreduced output element carries (sample x class weight x not ignored)."""
    shape = problem.x.shape[:-1] if problem.categorical else problem.x.shape
    w = problem.valid_mask().astype(np.float64)
    if problem.sample_weight is not None:
        sw = problem.sample_weight
        w = w * (sw if sw.ndim == w.ndim else sw.reshape(sw.shape + (1,) * (w.ndim - sw.ndim)))
    if problem.class_weight is not None and problem.categorical and problem.target_kind == "index":
        w = w * problem.class_weight[np.where(problem.valid_mask(), problem.target, 0)]
    return np.broadcast_to(w, shape)


def _smoothed(problem: Problem, y: np.ndarray, conv: Convention = MATH) -> np.ndarray:
    eps = problem.label_smoothing
    if not eps:
        return y
    if problem.categorical:
        # smoothing_last_axis: the binding divides by the size of the last axis it is handed, which in a
        # channels-first layout (N, C, d1, ..., dk) is dk, not C
        k = problem.x.shape[-2] if conv.smoothing_last_axis and problem.channels_first else problem.num_classes
        smoothed = y * (1 - eps) + eps / k
        return smoothed * problem.valid_mask()[..., None]  # ignored rows stay all-zero
    return y * (1 - eps) + 0.5 * eps


def unreduced(problem: Problem, conv: Convention = MATH):
    """Per-element loss, d loss / d x (row-wise), and their error scales, before any reduction.

    Sample weights are applied (every API that takes them returns weighted unreduced losses);
    ``mean_last_axis`` averages binary losses over the last axis.
    """
    x = problem.x
    if conv.probabilities_dtype not in (None, "input") and problem.op in ("bce", "categorical_ce"):
        x = round_to(x, conv.probabilities_dtype)  # the binding holds its input probabilities in that dtype
    with np.errstate(all="ignore"):
        y = _smoothed(problem, problem.dense_target(), conv)
        if problem.categorical:
            cw = problem.class_weight if problem.class_weight is not None else 1.0
            a = y * cw
            if problem.op == "softmax_ce" and conv.probabilities_dtype:
                loss, grad, vsc, gsc = _via_probabilities(x, a, conv, problem.dtype, categorical=True)
            elif problem.op == "softmax_ce":
                # index targets are gathered, not multiplied: the plain product policy applies to them
                # only where the binding one-hot encodes them first
                plain = bool(conv.zero_times_inf) and (problem.target_kind != "index" or bool(conv.one_hot_products))
                if problem.where is not None:  # an excluded class takes no part: as a -inf logit
                    x = np.where(problem.where, x, -np.inf)
                    if conv.where_excluded_target == "dropped":
                        a = np.where(problem.where, a, 0.0)
                loss, grad, vsc, gsc = _softmax_ce(x, a, plain, bool(conv.grad_unit_target_sum), problem.where)
                if problem.where is not None:
                    loss, grad, vsc, gsc = _where_classes(problem, conv, a, loss, grad, vsc, gsc)
                if conv.exp_sum_in_dtype:
                    loss = _loss_with_exp_sum_in_dtype(x, a, problem.dtype, plain)
                if conv.inf_logit_nan:  # z - max meets inf - inf (see Convention.inf_logit_nan)
                    pinf = x == np.inf
                    row = np.any(pinf, axis=-1)
                    counted = np.any(a != 0, axis=-1)  # an ignored row (no target mass) stays 0
                    if conv.inf_logit_nan == "row":
                        loss = np.where(row & counted, np.nan, loss)
                    elif conv.inf_logit_nan == "target_mass":
                        loss = np.where(np.any(pinf & (a != 0), axis=-1), np.nan, loss)
                    at_class = conv.inf_logit_nan == "at_class"
                    grad = np.where((pinf if at_class else row[..., None]) & counted[..., None], np.nan, grad)
                if conv.ignored_row_nan_grad and problem.ignore_index is not None:
                    trap = problem.ignored_rows() & np.any(x == -np.inf, axis=-1)
                    grad = np.where(trap[..., None], np.nan, grad)
            elif problem.op == "nll":
                loss, grad, vsc, gsc = _nll(x, a)
            else:
                loss, grad, vsc, gsc = _categorical_ce(x, a, conv, conv.constants_dtype(problem.dtype))
        else:
            if problem.op == "sigmoid_bce" and conv.probabilities_dtype:
                loss, grad, vsc, gsc = _via_probabilities(x, y, conv, problem.dtype, categorical=False)
            elif problem.op == "sigmoid_bce":
                pw = problem.pos_weight if problem.pos_weight is not None else np.ones(1)
                loss, grad, vsc, gsc = _sigmoid_bce(x, y, pw)
                if conv.sigmoid_formula is not None:  # at z = +-inf, the binding's formula in IEEE arithmetic
                    loss = np.where(np.isinf(x), SIGMOID_FORMULAS[conv.sigmoid_formula](x, y), loss)
            else:
                loss, grad, vsc, gsc = _bce(x, y, conv, conv.constants_dtype(problem.dtype),
                                            t_rounded=bool(problem.label_smoothing))
            if problem.class_weight is not None:  # elementwise rescaling weight, broadcast on the class axis
                cw = problem.class_weight
                loss, grad = loss * cw, grad * cw
                vsc = (vsc[0] * np.abs(cw), vsc[1] * np.abs(cw))
                gsc = (gsc[0] * np.abs(cw), gsc[1] * np.abs(cw))
        if problem.sample_weight is not None:
            sw = problem.sample_weight
            sw = sw.reshape(sw.shape + (1,) * (loss.ndim - sw.ndim))
            loss, vsc = loss * sw, (vsc[0] * np.abs(sw), vsc[1] * np.abs(sw))
            swg = sw[..., None] if problem.categorical else sw
            grad, gsc = grad * swg, (gsc[0] * np.abs(swg), gsc[1] * np.abs(swg))
        if conv.mean_last_axis and not problem.categorical:
            k = x.shape[-1]
            loss = np.mean(loss, axis=-1)
            vsc = (np.mean(vsc[0], axis=-1), np.mean(vsc[1], axis=-1) + k * np.mean(np.abs(vsc[0]), axis=-1))
            grad, gsc = grad / k, (gsc[0] / k, gsc[1] / k)
    return loss, grad, vsc, gsc


def mean_divisor(problem: Problem, conv: Convention, out_shape: tuple[int, ...]) -> float:
    """The denominator of a ``mean`` reduction under the binding's convention."""
    n = int(np.prod(out_shape))
    if conv.mean_by == "count":
        return float(n)
    omega = per_example_weight(problem)
    if conv.mean_last_axis and not problem.categorical:
        omega = omega[..., 0]
    if conv.mean_by == "valid_count":
        return float(np.sum(np.broadcast_to(problem.valid_mask(), omega.shape))) + (conv.mean_divisor_epsilon or 0.0)
    if conv.mean_by == "weight_sum":
        return float(np.sum(omega))
    if conv.mean_by == "nonzero_weight_count":
        return float(np.count_nonzero(omega))
    raise ValueError(f"unknown mean_by {conv.mean_by!r}; expected one of {MEAN_BY}")


def evaluate(problem: Problem, conv: Convention = MATH, cotangent: np.ndarray | None = None) -> Evaluation:
    """Value and gradient of ``problem`` under ``conv``.

    For ``reduction='none'`` the gradient is the VJP with ``cotangent`` (shape :func:`output_shape`);
    for ``sum``/``mean`` it is the gradient of the scalar.
    """
    if problem.op == "linear_ce":  # its own module: logits from a matmul, gradients for X, W and the bias
        from .linear_ce import evaluate_linear

        return evaluate_linear(problem, conv, cotangent)
    if conv.labels_in_dtype and problem.target_kind == "index":
        rounded = round_to(problem.target, problem.dtype)
        # a label the dtype cannot hold becomes inf (float16 above 65519): cast back, it is no class, and
        # a one-hot encoding of it is a row of zeros, whose loss is 0 (as a planted invalid label's)
        lost = ~np.isfinite(rounded) & ~problem.ignored_rows()
        if np.any(lost) and conv.one_hot_products and problem.invalid_target is None:
            rounded = np.where(lost, problem.num_classes, rounded)
            problem = replace(problem, invalid_target=problem.num_classes)
        problem = replace(problem, target=rounded.astype(np.int64))
    loss, dloss, (va, vs), (ga, gs) = unreduced(problem, conv)
    shape = loss.shape
    if problem.reduction == "none" or (conv.empty_reduced_is_empty and loss.size == 0):
        c = np.ones(shape) if cotangent is None else np.asarray(cotangent, dtype=np.float64)
        value, vscale = loss, (va, vs)
    else:
        # a float64 divisor: an empty or fully ignored batch has mean 0/0 = NaN, not an exception
        d = np.float64(1.0 if problem.reduction == "sum" else mean_divisor(problem, conv, shape))
        if d == 0 and conv.empty_mean_zero:
            d = np.float64(np.inf)  # sum / inf = 0, and every gradient multiplier 1 / inf = 0
        with np.errstate(all="ignore"):
            c = np.full(shape, 1.0 / d)
            value = np.sum(loss) / d
            n = loss.size
            # N-term summation of the weighted losses, then one division
            vscale = (np.sum(va) / abs(d), np.sum(vs) / abs(d) + n * np.sum(np.abs(loss)) / abs(d))
    with np.errstate(all="ignore"):
        cg = c[..., None] if (problem.categorical or problem.x.ndim > c.ndim) else c
        # an element with no gradient of its own (an ignored row) stays 0 even when the mean divides by 0
        grad = _where0((cg != 0) & (dloss != 0), dloss * cg)
        gscale = (_where0(cg != 0, ga * np.abs(cg)), _where0(cg != 0, gs * np.abs(cg)))
    value = np.asarray(value, dtype=np.float64)
    if conv.constants_dtype(problem.dtype) != problem.dtype:  # computed wider, rounded back: may overflow
        with np.errstate(over="ignore"):
            value, grad = round_to(value, problem.dtype), round_to(grad, problem.dtype)
    return Evaluation(value, grad, vscale, gscale)
