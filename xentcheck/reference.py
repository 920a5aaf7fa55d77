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

from collections import OrderedDict
from dataclasses import dataclass, field, make_dataclass

import numpy as np

from . import policies
from .policies import Flow
from .problem import Problem, overflowed, round_to, sequential_sum
from .stable import softplus as _softplus
from .stable import where0 as _where0

MEAN_BY = ("count", "valid_count", "weight_sum", "nonzero_weight_count")


class _ConventionMethods:
    """What every :class:`Convention` can say about itself."""

    __slots__ = ()

    def constants_dtype(self, dtype: str) -> str:
        """The dtype a policy's constants (clip bounds, floors) are rounded to for inputs in ``dtype``."""
        if self.probabilities_dtype not in (None, "input"):
            return self.probabilities_dtype
        return "float32" if self.upcast_half and dtype in ("float16", "bfloat16") else dtype

    def policies(self) -> dict:
        """The numerical policies in force (those that change the mathematics), by name."""
        return {n: getattr(self, n) for n in POLICIES if getattr(self, n) is not None}


_CONVENTION_DOC = """A binding's documented semantics, beyond the op itself (a frozen dataclass).

    mean_by: what ``mean`` divides by: the number of output elements, of non-ignored elements,
        the sum of the per-example weights, or the number of non-zero weights.
    mean_last_axis: binary ops only: the per-example loss is the mean over the last axis.

    The other fields are the registered numerical policies (:mod:`xentcheck.policies`, one module each),
    None where not in force:
"""

#: the binding's documented semantics: how its mean divides, then one field per registered policy
Convention = make_dataclass(
    "Convention",
    [
        ("mean_by", str, field(default="count")),
        ("mean_last_axis", bool, field(default=False)),
        *[(p.name, p.annotation, field(default=None)) for p in policies.REGISTRY],
    ],
    bases=(_ConventionMethods,),
    frozen=True,
    namespace={"__module__": __name__, "__doc__": policies.convention_doc(_CONVENTION_DOC)},
)

#: the Convention fields that are numerical policies (every field but what the binding's mean divides by)
POLICIES = tuple(p.name for p in policies.REGISTRY)
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
        shape = tuple(problem.x.shape[:-1])
        return shape[:-1] if _squeezes_singleton_class(problem, conv) else shape
    return tuple(problem.x.shape)


def _squeezes_singleton_class(problem: Problem, conv: Convention) -> bool:
    """``squeeze_singleton_class`` applies: one class, and spatial axes whose last one has length 1."""
    x = problem.x
    return bool(conv.squeeze_singleton_class) and problem.categorical and x.ndim > 2 and x.shape[-2:] == (1, 1)


def _softmax_ce(
    z: np.ndarray,
    a: np.ndarray,
    plain_product: bool = False,
    unit_target_sum: bool = False,
    summed: np.ndarray | None = None,
):
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
    # ...unless the row also holds a NaN logit: the logsumexp reads every logit, so it has no value (a
    # +inf does not make a NaN's mass 0: the limit is taken over finite logits only)
    nll = np.where(np.any(np.isnan(z), axis=-1, keepdims=True), np.nan, nll)
    on = a != 0
    terms = _where0(on, a * nll)
    if plain_product:  # (the log-softmax as the dtype holds it, past its range: log_softmax_in_dtype)
        terms = a * nll if summed is None else np.where(summed, a * nll, terms)
    loss = np.sum(terms, axis=-1)
    asum = np.ones_like(k, dtype=np.float64) if unit_target_sum else np.sum(a, axis=-1, keepdims=True)
    p = np.exp(-nll)
    grad = asum * p - a
    c = z.shape[-1]
    abs_a = np.abs(a)
    mag = np.abs(m_safe) + np.abs(log_s)
    # A: |lse| + |z_c| for every weighted class, plus 1 for the exp-sum itself, which the binding holds in
    # the dtype before its log (S >= 1 rounded by u moves log S by u: in bfloat16 a confident loss below
    # 2^-9 is 0); S: the 2C u error of the C-term exp-sum (inside log).
    va = np.sum(_where0(on, abs_a * (mag + np.abs(z) + 1)), axis=-1)
    vs = 2 * c * np.sum(abs_a, axis=-1)
    ga = np.abs(asum) * p * (1 + np.abs(_where0(np.isfinite(z), z)) + mag) + abs_a
    gs = 2 * c * np.abs(asum) * p
    if not (plain_product or unit_target_sum):
        # A row without target mass (an ignored row) contributes nothing to the value or the gradient,
        # whatever its logits hold: all -inf would give asum * p - a = 0 * NaN, a NaN logit NaN.
        dead = ~np.any(on, axis=-1, keepdims=True)
        grad, ga, gs = _where0(~dead, grad), _where0(~dead, ga), _where0(~dead, gs)
    return loss, grad, (va, vs), (ga, gs)


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
    if label_logit:
        # an excluded label's gradient is its own -a alone: the masked logsumexp gives an excluded class
        # exactly 0 (a select), even where the included classes' softmax is NaN (all of them -inf)
        grad = np.where(~inc & (a != 0), -a, grad)
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


def _clip_factor(
    conv: Convention, q: np.ndarray, lo: float, hi: float, dtype: str, held: np.ndarray | None = None
) -> np.ndarray:
    """What the clip's gradient multiplies the upstream gradient by at each unclipped ``q``: 1 inside the
    bounds, 0 outside (selected: an overflowed upstream there still gives 0); under
    ``clip_grad_product`` JAX's maximum/minimum factor, 1/2 where ``q`` as the dtype holds it (a
    renormalised 0.99955 is 1 in bfloat16) equals a bound, and a product (0 * inf = NaN).
    ``held``: ``q`` as the binding holds it where that is not ``q`` rounded to ``dtype`` (a
    renormalisation by a sum the dtype rounded): the clip compares that with its bounds (a renormalised
    0.99999989 is 1 - 2^-23 in float32, the upper bound itself, inside the clip)."""
    held = round_to(q, dtype) if held is None else held
    inside = (held >= lo) & (held <= hi)
    if not conv.clip_grad_product:
        return inside
    return np.where((held == lo) | (held == hi), 0.5, np.where(inside, 1.0, 0.0))


def _apply_clip(conv: Convention, factor: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The clip's gradient: ``g`` selected where ``factor`` (from :func:`_clip_factor`) holds, or, under
    ``clip_grad_product``, multiplied by it."""
    if conv.clip_grad_product:
        return g * factor
    return _where0(factor, g)


def _log_quotient(num: np.ndarray, den: np.ndarray, upstream, dtype: str) -> np.ndarray:
    """``num / den`` per unit upstream gradient, where the binding forms ``(upstream * num) / den`` in
    ``dtype`` (``log_grad_quotient``): exact where that quotient is finite in the dtype, its overflow
    (+-inf, signed per unit upstream) where it is not, NaN where it is 0/0."""
    u = (
        np.ones_like(num)
        if upstream is None
        else np.broadcast_to(upstream, np.broadcast_shapes(np.shape(upstream), num.shape))
    )
    with np.errstate(all="ignore"):
        held = round_to((u * num) / den, dtype)
        exact = np.where(num == 0, 0.0, num / den)
        over = np.copysign(np.inf, held) * np.where(u < 0, -1.0, 1.0)
    return np.where(np.isnan(held), np.nan, np.where(np.isinf(held), over, exact))


def _categorical_ce(p: np.ndarray, a: np.ndarray, conv: Convention, dtype: str, upstream=None, input_dtype=None):
    """l = -sum_c a_c log q_c with q the probabilities after the convention's policies (``dtype``: that of
    the policies' constants; ``upstream``: the gradient reaching each row's loss, read by
    ``log_grad_quotient``; ``input_dtype``: the input's, read by ``renormalize_sum_in_dtype``)."""
    steps = []  # (kind, data) in forward order, for the backward pass
    q, held = p, None
    if conv.renormalize == "before_clip":
        r = np.sum(q, axis=-1, keepdims=True)
        q = q / r
        steps.append(("renorm", (q, r)))
        # the clip sees the quotient by the sum as the dtype holds it: [2^-23, 1] in float16 sums to 1, so
        # 2^-23 sits on the clip's lower bound (its gradient passes) where the exact 2^-23 / (1 + 2^-23) is
        # below it (clipped, no gradient)
        hd = input_dtype or dtype
        held = round_to(p / round_to(r, hd), hd)
        if conv.renormalize_sum_in_dtype:  # values: the sum and the quotients as the dtype holds them
            q = held = round_to(p / sequential_sum(p, hd, axis=-1)[..., None], hd)
    if conv.prob_clip is not None:
        lo, hi = _clip_bounds(conv, dtype)
        inside = _clip_factor(conv, q, lo, hi, dtype, held)
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
    if conv.log_grad_quotient and conv.renormalize != "after_clip":
        # d log q = upstream / q, the quotient held in the dtype: inf only where it overflows
        grad = _log_quotient(-a, q, None if upstream is None else upstream[..., None], dtype)
    elif conv.log_grad_in_dtype and conv.renormalize != "after_clip":
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
            grad = _apply_clip(conv, data, grad)
            ga = _where0(data != 0, ga)
            gs = _where0(data != 0, gs)
        else:  # q = v / sum(v): g_in = (g_out - sum_k g_out_k q_k) / sum(v)
            qn, r = data
            # sum_k g_k q_k: where q_k = 0 the exact limit drops the term; a binding that multiplies
            # (clip_grad_product: JAX) forms NaN * 0 = NaN from its clip's 0 * inf and spreads it
            prod = grad * qn
            dot = np.sum(prod if conv.clip_grad_product else _where0(qn != 0, prod), axis=-1, keepdims=True)
            grad = (grad - dot) / r
            if conv.log_grad_in_dtype and conv.renormalize == "after_clip":
                # Keras's sparse path: softmax cross-entropy on log q, whose gradient g_log = q grad
                # reaches q as g_log * (1/q) with the reciprocal in the dtype (inf below 2^-16 in float16)
                qin = qn * r
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    g_log = grad * qin
                    if upstream is not None:
                        # TensorFlow's upstream * (softmax - onehot) is held in the dtype: below float16's
                        # smallest subnormal it is 0, and 0 * (1/q = inf) is NaN
                        u = np.broadcast_to(upstream[..., None], g_log.shape)
                        g_log = np.where(u != 0, round_to(u * g_log, dtype) / np.where(u != 0, u, 1.0), g_log)
                    grad = g_log * round_to(1 / qin, dtype)
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


def _bce(p: np.ndarray, t: np.ndarray, conv: Convention, dtype: str, t_rounded: bool = False, upstream=None):
    """l = -(t log p + (1 - t) log(1 - p)) under the clipping / log-clamping policies.

    ``t_rounded``: the binding forms ``t`` itself (label smoothing), so ``t`` carries a rounding error
    that ``1 - t`` amplifies; the error scales include its effect (dl/dt and dg/dt times |t|).
    ``upstream``: the gradient reaching each element's loss, read by ``log_grad_quotient``."""
    q, inside = p, np.ones(p.shape, dtype=bool)
    if conv.prob_clip is not None:
        lo, hi = _clip_bounds(conv, dtype)
        inside = _clip_factor(conv, p, lo, hi, dtype)
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
    if conv.grad_denominator_floor is not None and conv.bce_grad_steps_in_dtype:
        # g (p - t) / max((1 - p) p, floor), each step rounded to the dtype, per unit of g
        g = np.ones_like(q) if upstream is None else np.broadcast_to(upstream, q.shape)
        floor = round_to(conv.grad_denominator_floor, dtype)
        den = np.maximum(round_to(round_to(1 - q, dtype) * q, dtype), floor)
        with np.errstate(all="ignore"):
            held = round_to(round_to(g * round_to(q - t, dtype), dtype) / den, dtype)
            grad = np.where(g != 0, held / g, (q - t) / den)
        ga = (np.abs(q) + np.abs(t)) / den
    elif conv.grad_denominator_floor is not None:
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
    elif conv.zero_times_inf and conv.log_grad_quotient:
        # each log's derivative the quotient upstream / q in the dtype; 0 / 0 = NaN at p = t in {0, 1}
        grad = _log_quotient(-t, q, upstream, dtype) + _log_quotient(1 - t, 1 - q, upstream, dtype)
        ga = np.abs(t) / q + np.abs(1 - t) / (1 - q)
    elif conv.log_grad_in_dtype:
        # each log's derivative upstream * (1/q), the reciprocal held in the dtype: inf below q = 2^-16 in
        # float16, and 0 * inf = NaN where its term's weight is 0 (as a plain product)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            r1, r0 = round_to(1 / q, dtype), round_to(1 / (1 - q), dtype)
            if conv.zero_times_inf:
                grad = -t * r1 + (1 - t) * r0
            else:
                grad = _where0(t != 0, -t * r1) + _where0(t != 1, (1 - t) * r0)
        ga = np.abs(t) / q + np.abs(1 - t) / (1 - q)
    elif conv.zero_times_inf:
        grad = -t * (1 / q) + (1 - t) * (1 / (1 - q))
        ga = np.abs(t) / q + np.abs(1 - t) / (1 - q)
    else:
        grad = _where0(t != 0, -t / q) + _where0(t != 1, (1 - t) / (1 - q))
        ga = _where0(t != 0, np.abs(t / q)) + _where0(t != 1, np.abs((1 - t) / (1 - q)))
    grad, ga = _apply_clip(conv, inside, grad), _where0(inside != 0, ga)
    va = _where0(t != 0, np.abs(t) * (1 + np.abs(log1))) + _where0(t != 1, np.abs(1 - t) * (1 + np.abs(log0)))
    if t_rounded:
        va = va + np.abs(t) * np.abs(log1 - log0)
        ga = ga + _where0(inside != 0, np.abs(t) * (1 / q + 1 / (1 - q)))
    return loss, grad, (va, np.zeros_like(va)), (ga, np.zeros_like(ga))


def _via_probabilities(z: np.ndarray, a: np.ndarray, conv: Convention, dtype: str, categorical: bool, upstream=None):
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
            if conv.softmax_sum_in_dtype:  # each term and partial sum rounded, in class order
                e = round_to(e, dtype)
                total = sequential_sum(e, dtype, axis=-1)[..., None]
            else:
                total = np.sum(e, axis=-1, keepdims=True)
            p = round_to(e / total, dtype)
            loss, gp, (va, vs), (ga, gs) = _categorical_ce(p, a, conv, cdtype, upstream)
            va = va + np.sum(np.abs(p) * ga, axis=-1)
            # d softmax: g_z = p (g_p - sum_k p_k g_p,k)
            dot = np.sum(_where0(p != 0, p * gp), axis=-1, keepdims=True)
            grad = p * (gp - dot)
            adot = np.sum(p * ga, axis=-1, keepdims=True)
            return loss, grad, (va, vs), (p * (ga + adot) + np.abs(grad), p * (gs + adot))
        p = round_to(np.exp(-_softplus(-z)), dtype)  # sigmoid(z), as _sigmoid_bce forms it
        if conv.sigmoid_steps_in_dtype:  # 1 / (1 + exp(-z)), each step rounded to the dtype
            p = round_to(1 / round_to(1 + round_to(np.exp(-z), dtype), dtype), dtype)
        if conv.sigmoid_quotient_steps_in_dtype:  # exp(z) / (1 + exp(z)), each step rounded; 1 past exp's range
            e = round_to(np.exp(z), dtype)
            p = np.where(np.isinf(e), 1.0, round_to(e / round_to(1 + e, dtype), dtype))
        loss, gp, (va, vs), (ga, gs) = _bce(p, a, conv, cdtype, upstream=upstream)
        d = p * (1 - p)
        g = gp * d
        # the binding's sigmoid may be an ulp off the correctly rounded one (PyTorch's and JAX's sigmoid
        # of 7.0 in float32 is an ulp above it), and its backward, p (1 - p), reads its own p: where no
        # clip bites the gradient is p - t, so it moves by as much as p does, however small 1 - p is
        ulp = _where0(g != 0, np.abs(p))
        return loss, g, (va + np.abs(p) * ga, vs), (ga * d + np.abs(g) + ulp, gs * d)


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


def _smoothed(problem: Problem, y: np.ndarray, classes: int | None = None) -> np.ndarray:
    """The label-smoothed target; categorical smoothing divides ``eps`` by ``classes`` (default: the
    problem's class count)."""
    eps = problem.label_smoothing
    if not eps:
        return y
    if problem.categorical:
        k = problem.num_classes if classes is None else classes
        smoothed = y * (1 - eps) + eps / k
        return smoothed * problem.valid_mask()[..., None]  # ignored rows stay all-zero
    return y * (1 - eps) + 0.5 * eps


def _held_probabilities(flow: Flow) -> np.ndarray:
    """The from-probabilities ops' input, held in the policy's dtype (``probabilities_dtype``)."""
    dtype = flow.conv.probabilities_dtype
    return flow.x if dtype in (None, "input") else round_to(flow.x, dtype)


def _softmax_formula(flow: Flow) -> None:
    p, conv = flow.problem, flow.conv
    cw = p.class_weight if p.class_weight is not None else 1.0
    flow.a = a = flow.y * cw
    if conv.probabilities_dtype:
        flow.via_probabilities = True
        flow.loss, flow.grad, flow.vsc, flow.gsc = _via_probabilities(
            flow.x, a, conv, p.dtype, categorical=True, upstream=flow.upstream
        )
        return
    # index targets are gathered, not multiplied: the plain product policy applies to them only where the
    # binding one-hot encodes them first
    flow.plain = bool(conv.zero_times_inf) and (p.target_kind != "index" or bool(conv.one_hot_products))
    x = flow.x
    if p.where is not None:  # an excluded class takes no part: as a -inf logit
        x = np.where(p.where, x, -np.inf)
        if conv.where_excluded_target == "dropped":
            a = np.where(p.where, a, 0.0)
    out = _softmax_ce(x, a, flow.plain, bool(conv.grad_unit_target_sum), p.where)
    if p.where is not None:
        out = _where_classes(p, conv, a, *out)
    if flow.plain and p.ignore_index is not None:
        # an ignored row is masked out, whatever its products give (0 * -inf = NaN under plain products):
        # it contributes nothing to the value or the gradient (ignored_row_nan_grad documents otherwise)
        out = _masked_ignored_rows(p, *out)
    flow.x, flow.a = x, a
    flow.loss, flow.grad, flow.vsc, flow.gsc = out


def _nll_formula(flow: Flow) -> None:
    cw = flow.problem.class_weight if flow.problem.class_weight is not None else 1.0
    flow.a = flow.y * cw
    flow.loss, flow.grad, flow.vsc, flow.gsc = _nll(flow.x, flow.a)


def _categorical_formula(flow: Flow) -> None:
    p, conv = flow.problem, flow.conv
    cw = p.class_weight if p.class_weight is not None else 1.0
    flow.a = flow.y * cw
    flow.x = _held_probabilities(flow)
    out = _categorical_ce(flow.x, flow.a, conv, conv.constants_dtype(p.dtype), flow.upstream, p.dtype)
    flow.loss, flow.grad, flow.vsc, flow.gsc = _masked_ignored_rows(p, *out)


def _masked_ignored_rows(p: Problem, loss, grad, vsc, gsc):
    """An ignored row contributes nothing to the value or the gradient, whatever its probabilities hold:
    a renormalisation's backward would carry a NaN there into the row's gradient (0 * NaN), which no
    policy documents (a binding that leaks it says so with its own policy). The APIs that renormalise and
    clip, Keras's, replace an ignored row's probabilities with zeros and mask its loss with a where, whose
    gradient there is 0."""
    ign = p.ignored_rows() if p.target_kind == "index" else np.zeros(loss.shape, dtype=bool)
    if not ign.any():
        return loss, grad, vsc, gsc
    return (
        np.where(ign, 0.0, loss),
        np.where(ign[..., None], 0.0, grad),
        tuple(np.where(ign, 0.0, v) for v in vsc),
        tuple(np.where(ign[..., None], 0.0, g) for g in gsc),
    )


def _sigmoid_formula(flow: Flow) -> None:
    p, conv = flow.problem, flow.conv
    flow.a = flow.y
    if conv.probabilities_dtype:
        flow.via_probabilities = True
        out = _via_probabilities(flow.x, flow.y, conv, p.dtype, categorical=False, upstream=flow.upstream)
    else:
        out = _sigmoid_bce(flow.x, flow.y, p.pos_weight if p.pos_weight is not None else np.ones(1))
    flow.loss, flow.grad, flow.vsc, flow.gsc = out


def _bce_formula(flow: Flow) -> None:
    p, conv = flow.problem, flow.conv
    flow.a = flow.y
    flow.x = _held_probabilities(flow)
    flow.loss, flow.grad, flow.vsc, flow.gsc = _bce(
        flow.x, flow.y, conv, conv.constants_dtype(p.dtype), t_rounded=bool(p.label_smoothing), upstream=flow.upstream
    )


#: each op's formula: the loss, gradient and error scales of the flow's input and target (its core stage)
_FORMULAS = {
    "softmax_ce": _softmax_formula,
    "nll": _nll_formula,
    "categorical_ce": _categorical_formula,
    "sigmoid_bce": _sigmoid_formula,
    "bce": _bce_formula,
}


def _hooks(flow: Flow, stage: str) -> None:
    """Run the hooks of the policies in force at ``stage``."""
    for policy in policies.at(stage):
        if policy.in_force(flow.conv):
            policy.hook(flow)


def _class_weighted(flow: Flow) -> None:
    """A binary op's elementwise class weight (broadcast on the class axis), applied to each label's
    term before any mean over the labels; under ``loss_in_dtype`` the unweighted loss as the dtype
    holds it first (past its largest value, inf)."""
    p = flow.problem
    held = flow.conv.constants_dtype(p.dtype) if flow.conv.loss_in_dtype else None
    if held:  # the unweighted loss as the dtype holds it: past its largest value, inf
        flow.loss = overflowed(flow.loss, held)
    if p.class_weight is not None and not p.categorical:
        cw = p.class_weight
        flow.loss, flow.grad = flow.loss * cw, flow.grad * cw
        flow.vsc = (flow.vsc[0] * np.abs(cw), flow.vsc[1] * np.abs(cw))
        flow.gsc = (flow.gsc[0] * np.abs(cw), flow.gsc[1] * np.abs(cw))


def _sample_weighted(flow: Flow) -> None:
    """The per-sample weights, one per example (or per element of the input without its class axis),
    applied to the per-example loss: after a binary op's mean over its labels (``mean_last_axis``), as
    the APIs that average over the labels apply them (Keras's loss classes weight the per-example mean).
    The same number as weighting each label's term first, except where a policy rounds the label sum
    (``sum_in_dtype``); under ``loss_in_dtype`` the weighted loss as the dtype holds it."""
    p = flow.problem
    held = flow.conv.constants_dtype(p.dtype) if flow.conv.loss_in_dtype else None
    if p.sample_weight is not None:
        sw = p.sample_weight
        sw = sw.reshape(sw.shape + (1,) * (flow.loss.ndim - sw.ndim))
        flow.loss, flow.vsc = flow.loss * sw, (flow.vsc[0] * np.abs(sw), flow.vsc[1] * np.abs(sw))
        swg = sw.reshape(sw.shape + (1,) * (flow.grad.ndim - sw.ndim))  # the gradient keeps the class axis
        flow.grad, flow.gsc = flow.grad * swg, (flow.gsc[0] * np.abs(swg), flow.gsc[1] * np.abs(swg))
    if held:  # and the weighted one
        flow.loss = overflowed(flow.loss, held)


def _mean_last_axis(flow: Flow) -> None:
    """``mean_last_axis``: a binary op's per-example loss is the mean over the last axis."""
    if flow.conv.mean_last_axis and not flow.problem.categorical:
        k = flow.x.shape[-1]
        vsc, gsc = flow.vsc, flow.gsc
        if flow.conv.sum_in_dtype:  # the class sum held in the dtype, then divided
            held = flow.problem.dtype
            if flow.conv.label_sum_in_float32 and held in ("float16", "bfloat16", "float64"):
                held = "float32"
            with np.errstate(over="ignore"):
                flow.loss = round_to(np.sum(flow.loss, axis=-1), held) / k
        else:
            flow.loss = np.mean(flow.loss, axis=-1)
        flow.vsc = (np.mean(vsc[0], axis=-1), np.mean(vsc[1], axis=-1) + k * np.mean(np.abs(vsc[0]), axis=-1))
        flow.grad, flow.gsc = flow.grad / k, (gsc[0] / k, gsc[1] / k)


def _pipeline(problem: Problem, conv: Convention, upstream: np.ndarray | None = None) -> Flow:
    """The policies' input hooks, the op's formula (which reads the core policies), the policies' after
    hooks, then a binary op's class weights, the last-axis mean and the sample weights. ``upstream``: see
    :attr:`Flow.upstream`."""
    flow = Flow(problem, conv, problem.x, upstream=upstream)
    with np.errstate(all="ignore"):
        _hooks(flow, "inputs")
        flow.y = _smoothed(flow.problem, flow.problem.dense_target(), flow.smoothing_classes)
        if flow.lost_rows is not None:  # lost_label_nan: the row of a label the dtype lost is NaN
            flow.y = np.where(flow.lost_rows[..., None], np.nan, flow.y)
        _FORMULAS[flow.problem.op](flow)
        _hooks(flow, "after")
        _class_weighted(flow)
        _mean_last_axis(flow)
        _sample_weighted(flow)
    return flow


def unreduced(problem: Problem, conv: Convention = MATH):
    """Per-element loss, d loss / d x (row-wise), and their error scales, before any reduction, under the
    convention's policies (the input policies included: ``labels_in_dtype`` rounds the labels).

    Sample weights are applied (every API that takes them returns weighted unreduced losses);
    ``mean_last_axis`` averages binary losses over the last axis.
    """
    flow = _pipeline(problem, conv)
    return flow.loss, flow.grad, flow.vsc, flow.gsc


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


def _upstream(flow: Flow, c: np.ndarray) -> np.ndarray:
    """The gradient reaching each element of the formula's loss from the binding's output, whose
    gradient with respect to each unreduced element is ``c``: back through the last-axis mean and the
    weights (:func:`_mean_last_axis`, :func:`_class_weighted`, :func:`_sample_weighted`; a categorical
    op's class weights are in its target weights ``a``)."""
    p, conv = flow.problem, flow.conv
    u = np.asarray(c, dtype=np.float64)
    if conv.mean_last_axis and not p.categorical:
        u = np.broadcast_to(u[..., None], p.x.shape) / p.x.shape[-1]
    if p.sample_weight is not None:
        sw = p.sample_weight
        u = u * sw.reshape(sw.shape + (1,) * (u.ndim - sw.ndim))
    if p.class_weight is not None and not p.categorical:
        u = u * p.class_weight
    return u


#: the last evaluations asked for, by the problem's identity (problems are frozen), the convention and
#: the cotangent: a binding's value and gradient checks, and the bindings of one convention, ask the
#: oracle the same question. An entry holds its problem, so no other object can take that identity
#: while the entry lasts
_RECENT: OrderedDict[tuple, tuple[Problem, Evaluation]] = OrderedDict()
_RECENT_SIZE = 64


def evaluate(problem: Problem, conv: Convention = MATH, cotangent: np.ndarray | None = None) -> Evaluation:
    """Value and gradient of ``problem`` under ``conv``.

    For ``reduction='none'`` the gradient is the VJP with ``cotangent`` (shape :func:`output_shape`);
    for ``sum``/``mean`` it is the gradient of the scalar. A question asked again of the same problem
    object is answered from the last answers (as copies: a caller may write into its arrays).
    """
    c = None if cotangent is None else np.asarray(cotangent)
    key = (id(problem), conv, None if c is None else (c.dtype.str, c.shape, c.tobytes()))
    hit = _RECENT.get(key)
    if hit is None:
        hit = (problem, _evaluate(problem, conv, cotangent))
        _RECENT[key] = hit
        if len(_RECENT) > _RECENT_SIZE:
            _RECENT.popitem(last=False)
    _RECENT.move_to_end(key)
    ev = hit[1]

    def own(a):  # (a numpy scalar is immutable)
        return a.copy() if isinstance(a, np.ndarray) else a

    return Evaluation(own(ev.value), own(ev.grad), tuple(map(own, ev.value_scale)), tuple(map(own, ev.grad_scale)))


def _evaluate(problem: Problem, conv: Convention, cotangent: np.ndarray | None) -> Evaluation:
    if problem.op == "linear_ce":  # its own module: logits from a matmul, gradients for X, W and the bias
        from .linear_ce import evaluate_linear

        return evaluate_linear(problem, conv, cotangent)
    given = problem
    flow = _pipeline(problem, conv)
    problem = flow.problem  # as the input policies left it (labels_in_dtype may round its labels)
    loss, dloss, (va, vs), (ga, gs) = flow.loss, flow.grad, flow.vsc, flow.gsc
    shape = loss.shape
    divisor_terms = 0  # the number of weights a mean's divisor sums (0: the divisor is a count, exact)
    if problem.reduction == "none" or (conv.empty_reduced_is_empty and loss.size == 0):
        # (a squeezed output's cotangent lines up with the loss element for element: the same order)
        c = np.ones(shape) if cotangent is None else np.asarray(cotangent, dtype=np.float64).reshape(shape)
        output_grad = c  # the gradient of the binding's output with respect to each unreduced element
        value, vscale = loss, (va, vs)
        if _squeezes_singleton_class(problem, conv):
            squeezed = output_shape(problem, conv)
            value, vscale = loss.reshape(squeezed), (va.reshape(squeezed), vs.reshape(squeezed))
    else:
        # a float64 divisor: an empty or fully ignored batch has mean 0/0 = NaN, not an exception
        d = np.float64(1.0 if problem.reduction == "sum" else mean_divisor(problem, conv, shape))
        if d == 0 and conv.empty_mean_zero:
            d = np.float64(np.inf)  # sum / inf = 0, and every gradient multiplier 1 / inf = 0
        with np.errstate(all="ignore"):
            c = np.full(shape, 1.0 / d)
            output_grad = np.ones(shape)  # a scalar output's own gradient, before the reduction's 1/d
            terms, d_sum = loss, d
            if conv.masked_mean_scaled_weights and conv.mean_by == "valid_count" and 0 < d < np.inf:
                # Keras's apply_mask: each counted loss weighted by total / valid, the sum divided by total
                terms, d_sum = loss * (loss.size / d), np.float64(loss.size)
                if conv.loss_in_dtype:
                    terms = overflowed(terms, conv.constants_dtype(problem.dtype))
            total = sequential_sum(terms, problem.dtype) if conv.reduction_sum_in_dtype else np.sum(terms)
            if conv.sum_in_dtype:  # the batch sum held in the dtype: past its largest value it is inf
                total = round_to(total, problem.dtype)
            value = total / d_sum
            n = loss.size
            # N-term summation of the weighted losses, then one division
            vscale = (np.sum(va) / abs(d), np.sum(vs) / abs(d) + n * np.sum(np.abs(loss)) / abs(d))
            if problem.reduction == "mean" and conv.mean_by == "weight_sum":
                divisor_terms = int(np.size(per_example_weight(problem)))
    if (
        conv.log_grad_quotient
        or conv.bce_grad_steps_in_dtype
        or (conv.log_grad_in_dtype and conv.renormalize == "after_clip")
    ):
        # the formula's rounding depends on the upstream gradient: run it with it (the kernel's own, before
        # the weights and the mean, under bce_grad_steps_in_dtype = "cotangent")
        up = output_grad if conv.bce_grad_steps_in_dtype == "cotangent" else _upstream(flow, c)
        with np.errstate(all="ignore"):
            flow = _pipeline(given, conv, up)
        dloss, (ga, gs) = flow.grad, flow.gsc
    with np.errstate(all="ignore"):
        cg = c[..., None] if (problem.categorical or problem.x.ndim > c.ndim) else c
        # an element with no gradient of its own (an ignored row) stays 0 even when the mean divides by 0
        grad = _where0((cg != 0) & (dloss != 0), dloss * cg)
        gscale = (_where0(cg != 0, ga * np.abs(cg)), _where0(cg != 0, gs * np.abs(cg)))
        if divisor_terms:
            # the divisor is itself a sum of the weights: its rounding, at most (n - 1) u relative in a
            # recursive sum (Higham 4.2), scales the value and every gradient element alike
            vscale = (vscale[0], vscale[1] + divisor_terms * np.abs(value))
            gscale = (gscale[0], gscale[1] + divisor_terms * np.abs(grad))
    value = np.asarray(value, dtype=np.float64)
    if conv.constants_dtype(problem.dtype) != problem.dtype:  # computed wider, rounded back: may overflow
        with np.errstate(over="ignore"):
            value, grad = round_to(value, problem.dtype), round_to(grad, problem.dtype)
    return Evaluation(value, grad, vscale, gscale)
