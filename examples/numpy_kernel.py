"""A minimal external adapter: a NumPy softmax cross-entropy kernel with its own gradient, checked by
xentcheck exactly like the built-in frameworks (see docs/adapters.md):

    ./run conformance --frameworks= --adapter=examples.numpy_kernel:ADAPTER

Replace ``softmax_ce`` with a call to your own kernel (a fused CUDA op, a Triton kernel) and keep the
rest: the adapter receives a ``Problem`` (float64 arrays already rounded to ``problem.dtype``, class
axis last) and returns an ``Output`` (float64 arrays and the dtype the kernel computed in).
"""

from __future__ import annotations

import numpy as np

from xentcheck.problem import Problem, numpy_dtype
from xentcheck.protocol import Binding, Capabilities, Output

CAPS = Capabilities(
    "softmax_ce",
    targets=frozenset({"index", "onehot", "soft"}),
    dtypes=frozenset({"float32", "float64"}),
    options=frozenset({"spatial"}),
)


def softmax_ce(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row loss and d loss / d z for logits ``z`` and dense targets ``y`` (rows may not sum to 1)."""
    m = np.max(z, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)  # a row of -inf stays NaN below; +inf rows are handled next
    e = np.exp(z - m)
    s = e.sum(axis=-1, keepdims=True)
    nll, p = (m - z) + np.log(s), e / s
    top = z == np.inf  # the limit at +inf logits: they share all the mass
    k = top.sum(axis=-1, keepdims=True)
    nll = np.where(k > 0, np.where(top, np.log(np.maximum(k, 1)), np.inf), nll)
    p = np.where(k > 0, top / np.maximum(k, 1), p)
    loss = np.sum(y * nll, axis=-1, where=y != 0)  # 0 * inf = 0: no target mass, no loss
    return loss, y.sum(axis=-1, keepdims=True) * p - y


class NumpyKernel:
    """The adapter: a name, facts for the results file, the bindings, and ``run``."""

    name = "numpy_kernel"

    def environment(self) -> dict:
        return {"numpy_kernel": "1.0", "numpy": np.__version__}

    def bindings(self) -> list[Binding]:
        return [Binding("softmax_ce", "examples.numpy_kernel.softmax_ce", CAPS, fn=None)]

    def run(
        self, binding: Binding, problem: Problem, *, grad: bool, cotangent: np.ndarray | None, mode: str = "eager"
    ) -> Output:
        target, as_index = problem.handed_target()  # as a caller would pass it, malformed ones included
        dt = numpy_dtype(problem.dtype)
        z = problem.x.astype(dt)
        if as_index:  # a kernel validates its own input: wrong shape, type or range raises
            if target.shape != z.shape[:-1] or not np.issubdtype(target.dtype, np.integer):
                raise ValueError(f"labels of shape {target.shape} for logits of shape {z.shape}")
            if np.any((target < 0) | (target >= z.shape[-1])):
                raise IndexError("label out of range")
            y = np.zeros_like(z)
            np.put_along_axis(y, target[..., None], 1, axis=-1)
        elif target.shape != z.shape or problem.target_kind == "index":
            raise ValueError(f"targets of shape {target.shape} and kind {target.dtype} for logits {z.shape}")
        else:
            y = target.astype(dt)
        with np.errstate(all="ignore"):  # inf and NaN inputs give inf and NaN, as they should
            loss, g = softmax_ce(z, y)
            if problem.reduction == "none":
                up = cotangent.astype(dt)[..., None] if cotangent is not None else 1
                value, g = loss, g * up
            else:
                n = loss.size if problem.reduction == "mean" else 1
                value, g = loss.sum() / dt.type(n), g / dt.type(n)
        return Output(np.asarray(value, np.float64), np.asarray(g, np.float64) if grad else None, dt.name)


ADAPTER = NumpyKernel()
