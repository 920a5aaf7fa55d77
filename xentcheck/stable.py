"""Elementwise building blocks of the oracle that keep the limits: ``0 * inf = 0`` where mathematics
says so, and the softplus that neither overflows nor cancels. Shared by the oracle's formulas
(:mod:`xentcheck.reference`) and the policies' hooks (:mod:`xentcheck.policies`)."""

from __future__ import annotations

import numpy as np

__all__ = ["neg_log_softmax", "softplus", "where0"]


def where0(cond: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` where ``cond`` holds, else exactly 0: the ``0 * inf = 0`` limit convention."""
    return np.where(cond, value, 0.0)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + e^x)`` without overflow for large ``x`` or loss of digits for very negative ``x``."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def neg_log_softmax(z: np.ndarray) -> np.ndarray:
    """``lse(z) - z_c`` along the last axis, shifted by each row's maximum; a row whose maximum is not
    finite (a +inf, or every logit -inf) is left to give inf or NaN as IEEE arithmetic does."""
    m = np.max(z, axis=-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    return m_safe + np.log(np.sum(np.exp(z - m_safe), axis=-1, keepdims=True)) - z
