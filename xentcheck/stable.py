"""Elementwise building blocks of the oracle that keep the limits: ``0 * inf = 0`` where mathematics
says so, and the softplus that neither overflows nor cancels. Shared by the oracle's formulas
(:mod:`xentcheck.reference`) and the policies' hooks (:mod:`xentcheck.policies`)."""

from __future__ import annotations

import numpy as np

__all__ = ["softplus", "where0"]


def where0(cond: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` where ``cond`` holds, else exactly 0: the ``0 * inf = 0`` limit convention."""
    return np.where(cond, value, 0.0)


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + e^x)`` without overflow for large ``x`` or loss of digits for very negative ``x``."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))
