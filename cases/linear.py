"""Problems of op ``linear_ce`` from a case's ``linear`` table: hidden states X and a classifier W.

A linear case's ``shape`` is the shape of its logits, ``[N, V]`` or ``[B, T, V]`` (so targets, ignored
rows and class weights are drawn as for the other ops), and ``linear`` says how X [..., D], W [V, D]
and the bias are drawn (keys in cases/README.md):

- ``hidden`` (D), ``x_scale`` (X ~ N(0, x_scale)), ``logit_scale`` (W ~ N(0, logit_scale / sqrt(D)), so
  the logits are about N(0, x_scale * logit_scale));
- ``bias``: ``true`` or a number (a bias ~ N(0, that scale));
- ``offset``: a common logit offset, carried by the last hidden unit (X[..., -1] = 1, W[:, -1] = offset);
- ``confident``: the target's probability each row is moved to (p -> 0.999), by adding a multiple of
  its target's row of W to the row of X (bisection in float64; rounding to the dtype moves it a little);
- ``pad = { classes, value }``: the last ``classes`` classes get a bias of ``value`` (a number or "-inf"),
  the vocabulary padding of real models;
- ``softcap``: logit soft-capping c tanh(z / c); ``z_loss``: the z-loss scale (lse_square_scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentcheck.problem import Problem, round_to


def _confident(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, target: np.ndarray, q: float) -> np.ndarray:
    """X with each row moved along its target's W row until the target's softmax probability is q."""
    rows = x.reshape(-1, x.shape[-1]).copy()
    t = np.clip(target.reshape(-1), 0, w.shape[0] - 1)
    direction = w[t] / np.maximum(np.sum(w[t] ** 2, axis=-1, keepdims=True), 1e-300)

    def prob(lam):
        z = (rows + lam[:, None] * direction) @ w.T + (0.0 if b is None else b)
        z = z - np.max(z, axis=-1, keepdims=True)
        p = np.exp(z)
        p = p / np.sum(p, axis=-1, keepdims=True)
        return p[np.arange(len(t)), t]

    lo, hi = np.zeros(len(t)), np.full(len(t), 1.0)
    for _ in range(60):  # grow the bracket until the target class is confident enough
        grow = prob(hi) < q
        if not np.any(grow):
            break
        hi = np.where(grow, hi * 2, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = prob(mid) < q
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return (rows + hi[:, None] * direction).reshape(x.shape)


@dataclass(frozen=True)
class Labels:
    """A case's index targets as drawn for the other ops: ``target`` with its ignored and invalid rows
    already planted, the ignored label (``ignore_index``) and the invalid one (``invalid_target``)."""

    target: np.ndarray
    ignore_index: int | None = None
    invalid_target: int | None = None


def linear_problem(case, dtype: str, reduction: str, labels: Labels, class_weight: np.ndarray | None) -> Problem:
    """The linear_ce problem of ``case`` in ``dtype`` (inputs rounded to it), for targets drawn as for
    the other ops of the case (``labels``)."""
    target = labels.target
    spec = case.linear or {}
    d = int(spec.get("hidden", 8))
    lead, v = tuple(case.shape[:-1]), int(case.shape[-1])
    rng = np.random.default_rng(case.seed + 5)
    x = rng.normal(0.0, float(spec.get("x_scale", 1.0)), size=lead + (d,))
    w = rng.normal(0.0, float(spec.get("logit_scale", 1.0)) / np.sqrt(d), size=(v, d))
    bias = None
    if spec.get("bias") is not None and spec.get("bias") is not False:
        scale = 1.0 if spec["bias"] is True else float(spec["bias"])
        bias = rng.normal(0.0, scale, size=v)
    if "pad" in spec:
        k = int(spec["pad"]["classes"])
        bias = np.zeros(v) if bias is None else bias
        value = spec["pad"]["value"]
        bias[v - k :] = -np.inf if value == "-inf" else float(value)
    if "offset" in spec:  # the last hidden unit carries a common offset to every logit
        x[..., -1] = 1.0
        w[:, -1] = float(spec["offset"])
    if "confident" in spec:
        w = round_to(w, dtype)  # aim with the classifier as the binding will see it
        x = _confident(x, w, None if bias is None else round_to(bias, dtype), target, float(spec["confident"]))
    return Problem(
        case=case.name,
        op="linear_ce",
        dtype=dtype,
        x=round_to(x, dtype),
        target=target,
        target_kind="index",
        reduction=reduction,
        class_weight=class_weight,
        ignore_index=labels.ignore_index,
        label_smoothing=float(case.label_smoothing),
        category=case.category,
        invalid_target=labels.invalid_target,
        malformed=(case.invalid or {}).get("form"),
        weight_matrix=round_to(w, dtype),
        bias=None if bias is None else round_to(bias, dtype),
        softcap=None if spec.get("softcap") is None else float(spec["softcap"]),
        z_loss=float(spec.get("z_loss", 0.0)),
    )
