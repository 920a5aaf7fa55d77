"""Generating problems: a declared :class:`cases.case.Case` materialised as a :class:`Problem` for one op,
dtype and reduction (seeded arrays, masks, poisons, planted labels and weights)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from xentcheck.problem import CATEGORICAL_OPS, Problem, round_to

from .errors import CaseError

if TYPE_CHECKING:
    from .case import Case


def build_problem(case: Case, op: str, dtype: str, reduction: str) -> Problem:
    """The concrete problem of ``case`` for ``op`` in ``dtype`` (inputs rounded to ``dtype``)."""
    rng = np.random.default_rng(case.seed)
    shape = case.shape
    logits = _array(case.logits, shape, rng, "logits") if case.logits is not None else None
    categorical = op in CATEGORICAL_OPS
    probs = _array(case.probs, shape, rng, "probs") if case.probs is not None else None
    target, kind = _targets(case.targets, shape, categorical, rng)
    if case.mask is not None:
        logits, target = _mask(case.mask, logits, target, kind, np.random.default_rng(case.seed + 3))
    where = None
    if case.where is not None and "values" in case.where:  # the mask as declared; the targets as they are
        where = np.asarray(case.where["values"]).astype(bool)
    elif case.where is not None:
        excluded, target = _exclude(case.where, shape, target, kind, np.random.default_rng(case.seed + 4))
        where = ~excluded
    if case.poison is not None:
        logits = _poison(case.poison, logits)
    if op in ("softmax_ce", "sigmoid_bce", "linear_ce"):
        x = logits  # linear_ce: none, its X and W are drawn by cases/linear.py below
    elif op == "nll":  # log-probabilities: of the declared probabilities, else the logits as they are
        with np.errstate(divide="ignore"):
            x = np.log(probs) if probs is not None else logits
    elif probs is not None:
        x = probs
    elif categorical:  # softmax in float64; a -inf logit becomes an exact 0
        with np.errstate(all="ignore"):
            e = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
            x = e / e.sum(axis=-1, keepdims=True)
    else:
        x = 1.0 / (1.0 + np.exp(-logits))
    if (case.invalid or {}).get("form") == "int_logits":  # integer-valued, so the loss exists
        x = np.rint(x)
    x = round_to(x, dtype)
    if kind != "index":
        target = round_to(target, dtype)
    ignore = None
    if case.ignore_index is not None and kind == "index":
        ignore = int(case.ignore_index)
        if "values" not in case.targets:  # explicit labels are never rewritten: they say what is ignored
            drop = np.random.default_rng(case.seed + 1).random(target.shape) < case.ignore_fraction
            target = np.where(drop, ignore, target)
    invalid = None
    if case.invalid is not None and "value" in case.invalid and kind == "index":
        invalid = int(case.invalid["value"])
        target = target.copy()
        target[list(case.invalid["rows"])] = invalid
    c = shape[-1]
    weight_rng = np.random.default_rng(case.seed + 2)
    cw = _weights(case.class_weight, (c,), weight_rng, dtype)
    sw = _weights(case.sample_weight, (shape[0],), weight_rng, dtype, per_element=shape[:-1])
    pw = _weights(case.pos_weight, (c,), weight_rng, dtype)
    if op == "linear_ce":  # hidden states and a classifier instead of logits
        from .linear import Labels, linear_problem

        return linear_problem(case, dtype, reduction, Labels(target, ignore, invalid), cw)
    return Problem(
        case=case.name,
        op=op,
        dtype=dtype,
        x=x,
        target=target,
        target_kind=kind,
        reduction=reduction,
        class_weight=cw,
        sample_weight=sw,
        pos_weight=pw,
        ignore_index=ignore,
        label_smoothing=float(case.label_smoothing),
        category=case.category,
        invalid_target=invalid,
        malformed=(case.invalid or {}).get("form"),
        channels_first=bool(case.channels_first),
        where=where,
        cotangent=None if case.cotangent is None else np.asarray(case.cotangent["values"], dtype=np.float64),
    )


def _array(spec: dict, shape, rng: np.random.Generator, what: str) -> np.ndarray:
    if "values" in spec:
        a = np.asarray(spec["values"], dtype=np.float64)
        if a.shape != tuple(shape):
            raise CaseError(f"{what}.values has shape {a.shape}, expected shape {tuple(shape)}")
        return a
    if spec.get("dist", "normal") == "normal":
        a = rng.normal(0.0, float(spec.get("scale", 1.0)), size=shape)
    else:  # the schema allows only normal and uniform
        a = rng.uniform(float(spec.get("low", 0.0)), float(spec.get("high", 1.0)), size=shape)
    if "row_scales" in spec:  # rows of very different scale in one batch
        scales = np.asarray(spec["row_scales"], dtype=np.float64)
        a = a * np.resize(scales, shape[0]).reshape((shape[0],) + (1,) * (len(shape) - 1))
    return a


def _excluded(
    spec: dict, shape: tuple[int, ...], target: np.ndarray, kind: str, rng: np.random.Generator
) -> np.ndarray:
    """A fraction of non-target classes, plus the target class of the ``on_target`` rows and every class
    of the ``rows`` rows (a boolean array shaped like the input)."""
    mask = rng.random(shape) < float(spec.get("fraction", 0.3))
    if kind == "index":
        keep = np.zeros_like(mask)
        np.put_along_axis(keep, target[..., None], True, axis=-1)
    else:
        keep = target == np.max(target, axis=-1, keepdims=True)
    mask &= ~keep
    for row in spec.get("on_target", []):
        cls = target[row] if kind == "index" else np.argmax(target[row], axis=-1)
        np.put_along_axis(mask[row], np.asarray(cls)[..., None], True, axis=-1)
    if spec.get("rows") is not None:  # whole rows masked
        for row in spec["rows"]:
            mask[row] = True
    return mask


def _drop_mass(target: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Dense targets without mass ``where`` it holds, renormalised (a row left without mass stays 0)."""
    target = np.where(where, 0.0, target)
    sums = target.sum(axis=-1, keepdims=True)
    return np.where(sums > 0, target / np.where(sums > 0, sums, 1), target)


def _mask(spec: dict, logits: np.ndarray, target: np.ndarray, kind: str, rng: np.random.Generator):
    """Set a fraction of logits to -inf. Non-target classes only, unless ``on_target`` lists rows whose
    target class is masked too; dense targets lose their mass on masked classes (renormalised)."""
    mask = _excluded(spec, logits.shape, target, kind, rng)
    logits = np.where(mask, -np.inf, logits)
    if kind != "index":
        target = _drop_mass(target, mask)
    return logits, target


def _exclude(spec: dict, shape: tuple[int, ...], target: np.ndarray, kind: str, rng: np.random.Generator):
    """The classes a ``where=`` mask excludes, chosen as ``_mask`` chooses them, and the target: dense
    targets lose their mass on excluded classes, except on the ``on_target`` rows, whose mass stays on
    the excluded target class (the case of a mask that excludes the target)."""
    excluded = _excluded(spec, shape, target, kind, rng)
    if kind != "index":
        keep_rows = np.zeros(shape[:-1] + (1,), dtype=bool)
        keep_rows[list(spec.get("on_target", []))] = True
        target = _drop_mass(target, excluded & ~keep_rows)
    return excluded, target


def _poison(spec: dict, logits: np.ndarray) -> np.ndarray:
    """Put a non-finite value (``value`` = "nan", "inf" or "-inf") at column ``column`` of ``rows``."""
    logits = logits.copy()
    value = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[spec["value"]]
    for row in spec["rows"]:
        logits[row, ..., int(spec.get("column", 0))] = value
    return logits


def _targets(spec: dict, shape, categorical: bool, rng: np.random.Generator):
    kind = spec.get("kind", "index")
    c = shape[-1]
    if "values" in spec:
        v = np.asarray(spec["values"])
        if kind == "index":
            return v.astype(np.int64), "index"
        return v.astype(np.float64), ("soft" if kind == "soft" else kind)
    if kind in ("index", "onehot"):
        idx = rng.integers(0, c, size=shape[:-1])
        if kind == "index":
            return idx.astype(np.int64), "index"
        onehot = np.zeros(shape)
        np.put_along_axis(onehot, idx[..., None], 1.0, axis=-1)
        return onehot, "onehot"
    if kind == "soft" and categorical:
        y = rng.dirichlet(np.full(c, float(spec.get("alpha", 1.0))), size=shape[:-1])
        zeros = float(spec.get("zeros", 0.0))
        if zeros:
            keep = rng.random(shape) >= zeros
            keep[..., 0] |= ~keep.any(axis=-1)  # never an all-zero row
            y = y * keep
            y = y / y.sum(axis=-1, keepdims=True)
        if "total" in spec:  # rows that do not sum to one
            y = y * rng.uniform(float(spec["total"]["low"]), float(spec["total"]["high"]), size=shape[:-1] + (1,))
        return y, "soft"
    if kind == "soft":
        return rng.uniform(0.0, 1.0, size=shape), "soft"
    return (rng.random(shape) < float(spec.get("p", 0.5))).astype(np.float64), "binary"


def _weights(
    spec, shape, rng: np.random.Generator, dtype: str, per_element: tuple[int, ...] | None = None
) -> np.ndarray | None:
    """Weights of ``shape``; sample weights (``per_element`` given) may also be one per element of a
    spatial input, ``per_element`` = (N, d1, ...): explicit values of that shape, or ``per_element = true``."""
    if spec is None:
        return None
    if isinstance(spec, (int, float)):
        return round_to(np.full(shape, float(spec)), dtype)
    if isinstance(spec, list) or "values" in spec:
        a = np.asarray(spec if isinstance(spec, list) else spec["values"], dtype=np.float64)
        if a.shape != shape and (per_element is None or a.shape != per_element):
            also = f" or {per_element} (one per element)" if per_element and per_element != shape else ""
            raise CaseError(f"weights have shape {a.shape}, expected {shape}{also}")
        return round_to(a, dtype)
    size = per_element if spec.get("per_element") and per_element is not None else shape
    return round_to(rng.uniform(float(spec.get("low", 0.5)), float(spec.get("high", 2.0)), size=size), dtype)
