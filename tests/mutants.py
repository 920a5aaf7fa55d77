"""A framework-free adapter implementing all four ops in NumPy, honestly or with one planted bug.

The honest version computes in the problem's dtype with the usual stable formulations and
hand-written gradients, follows the PyTorch-like convention (``mean`` divides by the weight sum
for index targets, by the element count otherwise) and supports every option. Each mutant plants
one bug of a kind real libraries have shipped; ``tests/test_mutants.py`` shows the suite kills each.
"""

from __future__ import annotations

import numpy as np

from adapters import ALL_REDUCTIONS, Binding, Capabilities, Output
from xentcheck.problem import LINEAR_OPTIONS, OPS, OPTIONS, numpy_dtype
from xentcheck.reference import Convention

#: name -> what the planted bug does
MUTANTS = {
    "no_max_shift": "softmax without subtracting the row max (overflows for large logits)",
    "naive_sigmoid": "log(sigmoid(z)) and log(1 - sigmoid(z)) computed literally",
    "mean_ignores_weights": "mean divides by the element count even with class weights",
    "ignored_rows_counted": "rows with ignore_index still count in the mean's divisor",
    "smoothing_dropped": "label_smoothing accepted and ignored",
    "smoothing_binary_convention": "categorical smoothing with eps / 2 (the binary convention)",
    "grad_off_by_reduction": "the mean's gradient is not divided by the divisor",
    "other_clip_eps": "probabilities clipped to [1e-4, 1 - 1e-4]",
    "pos_weight_on_negatives": "pos_weight multiplies the negative term",
    "sample_weight_dropped": "sample weights accepted and ignored",
    "class_weight_squared": "class weights applied twice",
    "float16_accumulation": "the class sum accumulates in float16",
    "grad_sign_flipped": "the gradient of the binary ops has the wrong sign",
    "wrong_cotangent": "the unreduced gradient ignores the upstream cotangent",
    "wrong_result_dtype": "the right numbers, returned as float64 whatever the input dtype",
    "half_accumulation": "half-precision input: the softmax's exp-sum accumulated term by term in float16",
}


def _convention(problem) -> Convention:
    return Convention(mean_by="weight_sum" if problem.target_kind == "index" else "count")


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


#: the ops the mutants compute (linear_ce's oracle has its own tests: tests/test_linear_ce.py)
MUTANT_OPS = tuple(op for op in OPS if op != "linear_ce")


class MutantAdapter:
    """Implements the adapters.Adapter protocol; ``bug`` is None (honest) or a key of MUTANTS."""

    def __init__(self, bug: str | None = None):
        self.bug = bug
        self.name = f"mutant-{bug}" if bug else "honest"

    def environment(self) -> dict:
        return {self.name: "0.0"}

    def bindings(self) -> list[Binding]:
        targets = {
            "softmax_ce": {"index", "onehot", "soft"},
            "categorical_ce": {"index", "onehot", "soft"},
            "nll": {"index"},
        }
        every = frozenset(OPTIONS) - {"where"} - LINEAR_OPTIONS  # optax's class mask: not modelled by the mutants
        options = {"nll": every - {"label_smoothing", "pos_weight"}}  # nll_loss has neither
        caps = {
            op: Capabilities(
                op,
                frozenset(targets.get(op, {"binary", "soft"})),
                ALL_REDUCTIONS,
                options.get(op, every),
                frozenset({"float16", "float32", "float64"}),
            )
            for op in MUTANT_OPS
        }
        return [Binding(f"np.{op}", f"mutants.{op}", caps[op], fn=None, convention=_convention) for op in MUTANT_OPS]

    # -- the computation ----------------------------------------------------------------------
    def run(self, binding, problem, *, grad, cotangent, mode="eager") -> Output:
        with np.errstate(all="ignore"):  # planted bugs overflow on purpose; honest inf/NaN are expected
            value, g = self._compute(problem, cotangent)
        dt = numpy_dtype(problem.dtype)
        out_dtype = "float64" if self.bug == "wrong_result_dtype" else dt.name
        return Output(
            np.asarray(value, dt).astype(np.float64), np.asarray(g, dt).astype(np.float64) if grad else None, out_dtype
        )

    def _compute(self, p, cotangent):
        bug = self.bug
        handed, as_index = p.handed_target()
        if handed.shape != p.target.shape:
            raise ValueError(f"target shape {handed.shape} does not match {p.target.shape}")
        if p.target_kind == "index":
            if not as_index:
                raise TypeError("class indices must be integers")
            t = p.target[~p.ignored_rows()]
            if np.any((t < 0) | (t >= p.num_classes)):
                raise ValueError("label out of range")
        dt = numpy_dtype(p.dtype)
        x = p.x.astype(dt)
        valid = p.valid_mask()
        y = p.dense_target().astype(dt)
        eps = p.label_smoothing if bug != "smoothing_dropped" else 0.0
        if eps:
            y = y * (1 - eps) + (
                eps / 2 if bug == "smoothing_binary_convention" or not p.categorical else eps / p.num_classes
            )
            if p.categorical:
                y = y * valid[..., None]
        cw = p.class_weight.astype(dt) if p.class_weight is not None else None
        if bug == "class_weight_squared" and cw is not None:
            cw = cw * cw
        sw = p.sample_weight.astype(dt) if p.sample_weight is not None and bug != "sample_weight_dropped" else None
        d = self._divisor(p, valid, cw, sw)
        # The upstream gradient of each example (cotangent or 1/divisor, times its sample weight), formed
        # first and multiplied into each gradient's numerator, as autodiff does: scaling afterwards would
        # overflow where -t/p does but the scaled gradient does not (a subnormal p under a mean).
        if p.reduction == "none":
            up = cotangent.astype(dt) if cotangent is not None and bug != "wrong_cotangent" else dt.type(1)
        elif p.reduction == "sum" or bug == "grad_off_by_reduction":
            up = dt.type(1)
        else:
            up = dt.type(1) / dt.type(d) if d else dt.type(np.inf)
        out_shape = x.shape[:-1] if p.categorical else x.shape
        up = np.broadcast_to(up, out_shape).astype(dt)
        if sw is not None:  # a zero weight is a structural zero, even when nothing counts (1/0)
            sw_e = np.broadcast_to(sw.reshape(sw.shape + (1,) * (len(out_shape) - 1)), out_shape)
            up = np.where(sw_e != 0, up * sw_e, 0).astype(dt)
        f = up[..., None] if p.categorical else up  # per element of x
        if p.op == "softmax_ce":
            a = y * (cw if cw is not None else 1)
            m = x.max(axis=-1, keepdims=True) if bug != "no_max_shift" else np.zeros_like(x[..., :1])
            m = np.where(np.isfinite(m), m, 0)
            e = np.exp(x - m)
            acc = np.float16 if bug == "float16_accumulation" else dt
            if bug == "half_accumulation" and dt == np.float16:  # each partial sum rounded to float16
                s = np.add.accumulate(e.astype(np.float16), axis=-1)[..., -1:]
            else:  # honest: a half-precision row is summed in float32
                s = e.astype(np.float32 if dt == np.float16 else acc).sum(axis=-1, keepdims=True).astype(dt)
            nll = (m - x) + np.log(s)
            sm = e / s
            pinf = x == np.inf  # the limit: +inf logits share all the mass
            k = pinf.sum(axis=-1, keepdims=True)
            nll = np.where(k > 0, np.where(pinf, np.log(np.maximum(k, 1)), np.inf), nll)
            sm = np.where(k > 0, pinf / np.maximum(k, 1), sm)
            loss = np.sum(a * nll, axis=-1, where=a != 0)
            g = np.where((a != 0).any(axis=-1, keepdims=True), f * (a.sum(axis=-1, keepdims=True) * sm - a), 0)
        elif p.op == "nll":  # given log-probabilities: -sum a x, exactly -a as the gradient
            a = y * (cw if cw is not None else 1)
            loss = -np.sum(a * x, axis=-1, where=a != 0)
            g = -(a * f)
        elif p.op == "categorical_ce":
            a = y * (cw if cw is not None else 1)
            q = np.clip(x, 1e-4, 1 - 1e-4) if bug == "other_clip_eps" else x
            acc = np.float16 if bug == "float16_accumulation" else dt
            loss = -np.sum((a * np.log(q)).astype(acc), axis=-1, where=a != 0).astype(dt)
            g = np.where(a != 0, -(a * f) / q, 0) * (q == x)
        else:
            t = y
            pw = p.pos_weight.astype(dt) if p.pos_weight is not None else dt.type(1)
            if p.op == "sigmoid_bce":
                if bug == "naive_sigmoid":
                    sig = 1 / (1 + np.exp(-x))
                    lp, ln = np.log(sig), np.log(1 - sig)
                else:  # held in float64 until the weights apply: pw t log sigmoid(z) may pass the dtype's
                    # largest value where the weighted loss does not (case weighted_logits_near_largest)
                    lp, ln = -_softplus(-x.astype(np.float64)), -_softplus(x.astype(np.float64))
                pos, neg = (1.0, pw) if bug == "pos_weight_on_negatives" else (pw, 1.0)
                loss = -(np.where(t != 0, pos * t * lp, 0) + np.where(t != 1, neg * (1 - t) * ln, 0))
                g = f * (neg * (1 - t) * np.exp(-_softplus(-x)) - pos * t * np.exp(-_softplus(x)))
            else:
                q = np.clip(x, 1e-4, 1 - 1e-4) if bug == "other_clip_eps" else x
                loss = -(np.where(t != 0, t * np.log(q), 0) + np.where(t != 1, (1 - t) * np.log1p(-q), 0))
                g = (np.where(t != 0, -(t * f) / q, 0) + np.where(t != 1, ((1 - t) * f) / (1 - q), 0)) * (q == x)
            if bug == "grad_sign_flipped":
                g = -g
            if cw is not None:
                loss, g = loss * cw, g * cw
        if sw is not None:
            loss = loss * sw.reshape(sw.shape + (1,) * (loss.ndim - 1))
        loss = loss.astype(dt)  # the weighted loss in the dtype
        if p.reduction == "none":
            return loss, g
        # honest: a half-precision batch is summed in float32 (a finite mean of large losses stays finite)
        total = loss.astype(np.float32).sum().astype(loss.dtype) if loss.dtype == np.float16 else loss.sum()
        if p.reduction == "sum":
            return total, g
        return (loss.astype(np.float32).sum() / d).astype(loss.dtype) if loss.dtype == np.float16 else total / d, g

    def _divisor(self, p, valid, cw, sw):
        """What ``mean`` divides by: the weight sum of the counted examples (index targets), else the
        number of output elements."""
        if p.target_kind == "index" and self.bug != "mean_ignores_weights":
            omega = valid if self.bug != "ignored_rows_counted" else np.ones_like(valid)
            omega = omega * (cw[np.where(valid, p.target, 0)] if cw is not None else 1)
            if sw is not None:
                omega = omega * sw
            return omega.sum()
        return valid.size
