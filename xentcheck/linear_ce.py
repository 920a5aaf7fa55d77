"""The oracle of op ``linear_ce``: fused linear + cross-entropy, exact in float64 from the rounded inputs.

The op: logits ``z = X W^T + b`` (hidden states X [N, D] or [B, T, D], classifier W [V, D], optional
bias [V]), optionally soft-capped (``c tanh(z / c)``), then softmax cross-entropy with index targets
(``ignore_index``, class weights, label smoothing as PyTorch states them), plus the z-loss
``s lse^2`` of every counted row (Liger's ``lse_square_scale``: unweighted, a ``mean`` divides it by
the number of counted rows). The softmax part is the softmax_ce oracle of :mod:`xentcheck.reference`
applied to the exact logits; this module adds the matmul before it and the chain rule after it.

The gradient of a problem is one flat array: ``dX``, then ``dW``, then ``db`` (with a bias), each
raveled in C order (:func:`split_grad` takes it apart). One ``grad`` check thus covers every gradient
the binding returns, element by element, each element with its own bound.

Error scales (see docs/tolerance.md, "linear_ce"): the logits carry the error of a D-term dot
product, ``D u_acc M`` with ``M = |X| |W|^T + |b|``, which enters the loss through
``dl/dz_k = (sum a) p_k - a_k``; the logits rounded to the dtype add ``u |z|``; ``dX = dZ W`` sums V
terms, ``dW = dZ^T X`` and ``db`` sum N: their summation terms use the accumulation dtype's roundoff,
so a weight gradient accumulated in bfloat16 across chunks is outside the bound while a float32
accumulation is inside.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import reference
from .problem import Problem


def hidden_size(problem: Problem) -> int:
    """D, the length of every dot product that forms a logit."""
    return int(problem.x.shape[-1])


def grad_shapes(problem: Problem) -> list[tuple[str, tuple[int, ...]]]:
    """The gradients the flat ``grad`` holds, in order: (name, shape)."""
    out = [("dX", tuple(problem.x.shape)), ("dW", tuple(problem.weight_matrix.shape))]
    if problem.bias is not None:
        out.append(("db", tuple(problem.bias.shape)))
    return out


def split_grad(problem: Problem, flat: np.ndarray) -> dict[str, np.ndarray]:
    """The flat gradient of a linear_ce problem as {"dX": ..., "dW": ..., "db": ...}."""
    out, at = {}, 0
    for name, shape in grad_shapes(problem):
        n = int(np.prod(shape))
        out[name] = np.asarray(flat[at : at + n]).reshape(shape)
        at += n
    return out


def flat_grad(*grads) -> np.ndarray:
    """dX, dW (and db) raveled and joined: the layout of a linear_ce gradient."""
    return np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads if g is not None])


def exact_logits(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(z, M): the logits ``X W^T + b`` of the rounded inputs, rows flattened to (N, V), and the
    magnitudes ``M = |X| |W|^T + |b|`` their dot products sum. Products of float32 (or narrower)
    inputs are exact in float64 and the D-term sums err by ``D 2^-53 M``, far below any bound judged in
    those dtypes; float64 inputs are multiplied in extended precision (``np.longdouble``)."""
    d = hidden_size(problem)
    x = problem.x.reshape(-1, d)
    w = problem.weight_matrix
    if problem.dtype == "float64":
        z = (x.astype(np.longdouble) @ w.T.astype(np.longdouble)).astype(np.float64)
    else:
        z = x @ w.T
    m = np.abs(x) @ np.abs(w).T
    if problem.bias is not None:
        with np.errstate(invalid="ignore"):
            z = z + problem.bias
        m = m + np.where(np.isfinite(problem.bias), np.abs(problem.bias), 0.0)
    return z, m


def _weighted_target(sp: Problem) -> np.ndarray:
    """a: the dense target after label smoothing (eps / V per class on counted rows), times the class weight."""
    y = sp.dense_target()
    eps = sp.label_smoothing
    if eps:
        y = (y * (1 - eps) + eps / sp.num_classes) * sp.valid_mask()[..., None]
    return y * (sp.class_weight if sp.class_weight is not None else 1.0)


def evaluate_linear(
    problem: Problem, conv: reference.Convention = reference.MATH, cotangent: np.ndarray | None = None
) -> reference.Evaluation:
    """Value and flat gradient (dX, dW, db) of a linear_ce problem under ``conv``, with error scales.

    ``reduction='none'``: the per-row loss (shape ``x.shape[:-1]``) and the VJP of ``cotangent``;
    ``sum``/``mean``: the scalar and its gradient (``mean`` divides the cross-entropy by the binding's
    ``mean_by`` divisor and the z-loss by the number of counted rows)."""
    lead = problem.x.shape[:-1]
    n_rows = int(np.prod(lead))
    d = hidden_size(problem)
    x = problem.x.reshape(n_rows, d)
    w = problem.weight_matrix
    with np.errstate(all="ignore"):
        z, mag = exact_logits(problem)
        deriv = np.ones_like(z)
        if problem.softcap is not None:  # c tanh(z / c): -inf becomes -c, its derivative 0
            t = np.tanh(z / problem.softcap)
            z, deriv, mag = problem.softcap * t, 1 - t * t, mag * (1 - t * t)
        flat = problem.target.reshape(n_rows)
        sp = Problem(
            case=problem.case,
            op="softmax_ce",
            dtype=problem.dtype,
            x=z,
            target=flat,
            target_kind="index",
            reduction=problem.reduction,
            class_weight=problem.class_weight,
            ignore_index=problem.ignore_index,
            label_smoothing=problem.label_smoothing,
            category=problem.category,
            invalid_target=problem.invalid_target,
        )
        loss, dz, (va, vs), (ga, gs) = reference.unreduced(sp, conv)
        a = _weighted_target(sp)
        asum = np.sum(a, axis=-1, keepdims=True)
        zf = np.where(np.isfinite(z), z, 0.0)
        zmax = np.max(z, axis=-1, keepdims=True)
        zmax = np.where(np.isfinite(zmax), zmax, 0.0)
        e = np.exp(z - zmax)
        s = np.sum(e, axis=-1, keepdims=True)
        p = e / s
        lse = (zmax + np.log(s))[:, 0]
        # the logits' own errors: u |z| (rounded to the dtype) and D u_acc M (the dot product)
        sens = np.abs(asum) * p + np.abs(a)  # |dl/dz_k| bound
        va = va + np.sum(sens * np.abs(zf), axis=-1)
        vs = vs + d * np.sum(sens * mag, axis=-1)
        pz = np.sum(p * np.abs(zf), axis=-1, keepdims=True)
        pm = np.sum(p * mag, axis=-1, keepdims=True)
        ga = ga + np.abs(asum) * p * (np.abs(zf) + pz)
        gs = gs + d * np.abs(asum) * p * (mag + pm)
        # the z-loss s lse^2 of every counted row
        counted = sp.valid_mask()
        zl = problem.z_loss * np.where(counted, lse * lse, 0.0)
        dzl = 2 * problem.z_loss * np.where(counted, lse, 0.0)[:, None] * p
        zva = 3 * np.abs(zl)
        zvs = 4 * z.shape[-1] * problem.z_loss * np.abs(lse) * counted
        zga = np.abs(dzl) * (2 + np.abs(zf) + np.abs(lse)[:, None])
        zgs = 2 * z.shape[-1] * np.abs(dzl)
        # the reduction: per-row multipliers of the cross-entropy and of the z-loss
        if problem.reduction == "none":
            c = np.ones(n_rows) if cotangent is None else np.asarray(cotangent, dtype=np.float64).reshape(n_rows)
            cz = c
            value = (loss + zl).reshape(lead)
            vscale = ((va + zva).reshape(lead), (vs + zvs).reshape(lead))
        else:
            div = 1.0 if problem.reduction == "sum" else reference.mean_divisor(sp, conv, (n_rows,))
            zdiv = 1.0 if problem.reduction == "sum" else float(np.sum(counted))
            if conv.empty_mean_zero:  # a mean over nothing is 0: sum / inf, every multiplier 0
                div, zdiv = (np.inf if div == 0 else div), (np.inf if zdiv == 0 else zdiv)
            c = np.full(n_rows, 1.0 / np.float64(div))
            cz = np.full(n_rows, 1.0 / np.float64(zdiv)) if problem.z_loss else np.zeros(n_rows)
            terms = c * loss + (cz * zl if problem.z_loss else 0.0)
            value = np.asarray(np.sum(terms))
            ac, acz = np.abs(c), np.abs(cz)
            vscale = (
                np.asarray(np.sum(ac * va + acz * zva)),
                np.asarray(np.sum(ac * vs + acz * zvs) + n_rows * np.sum(np.abs(terms))),
            )
        cc, ccz = c[:, None], cz[:, None]
        # an element with no gradient of its own (an ignored row) stays 0 even when the mean divides by 0
        g = np.where((cc != 0) & (dz != 0), dz * cc, 0.0)
        if problem.z_loss:
            g = g + np.where((ccz != 0) & (dzl != 0), dzl * ccz, 0.0)
        gA = np.where(ga != 0, np.abs(cc) * ga, 0.0) + np.where(zga != 0, np.abs(ccz) * zga, 0.0)
        gS = np.where(gs != 0, np.abs(cc) * gs, 0.0) + np.where(zgs != 0, np.abs(ccz) * zgs, 0.0)
        g, gA, gS = g * deriv, gA * deriv, gS * deriv  # through the soft-cap
        ag = np.abs(g)
        aw, ax = np.abs(w), np.abs(x)
        dx = g @ w
        dw = g.T @ x
        v = z.shape[-1]
        scales = [((gA + ag) @ aw, gS @ aw + v * (ag @ aw)), ((gA + ag).T @ ax, gS.T @ ax + n_rows * (ag.T @ ax))]
        grads = [dx.reshape(problem.x.shape), dw]
        if problem.bias is not None:
            grads.append(np.sum(g, axis=0))
            scales.append((np.sum(gA + ag, axis=0), np.sum(gS, axis=0) + n_rows * np.sum(ag, axis=0)))
        if conv.empty_mean_nan_grad and problem.reduction == "mean" and not np.any(counted):
            grads = [np.full_like(gr, np.nan) for gr in grads]
        if conv.frozen_input_no_weight_grad:
            grads = [grads[0], *(np.zeros_like(gr) for gr in grads[1:])]
    return reference.Evaluation(
        np.asarray(value, dtype=np.float64),
        flat_grad(*grads),
        vscale,
        (flat_grad(*(s[0] for s in scales)), flat_grad(*(s[1] for s in scales))),
    )


def unfused(problem: Problem) -> Problem:
    """The softmax_ce problem of this linear_ce problem's exact logits (rows flattened), for relations
    and diagnostics: the fused op equals cross-entropy of ``X W^T + b`` (soft-capped)."""
    z, _ = exact_logits(problem)
    if problem.softcap is not None:
        z = problem.softcap * np.tanh(z / problem.softcap)
    return replace(
        problem,
        op="softmax_ce",
        x=z,
        target=problem.target.reshape(-1),
        weight_matrix=None,
        bias=None,
        softcap=None,
        z_loss=0.0,
    )
