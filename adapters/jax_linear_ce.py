"""JAX's linear + cross-entropy (op linear_ce), bound by the jax adapter: the optax composition JAX users
write, ``optax.softmax_cross_entropy_with_integer_labels(X @ W.T + b, y)``, as JAX's unfused baseline
(the N x V logits materialised in the input dtype), and tokamax's fused
``linear_softmax_cross_entropy_loss`` where tokamax is installed (not by default: it brings flax, orbax
and tensorstore; ``pip install tokamax``).

Each binding is a ``step``: ``jax.vjp`` over X, W and the bias gives the loss and the flat gradient
(dX, dW, db: ``xentcheck.linear_ce``), jitted whole in the compiled mode; W is [V, D] as the oracle
holds it (tokamax takes its transpose, [D, V]). Rows of [B, T, D] hidden states are flattened to
[B T, D], as these losses are called in training.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import jax
import jax.numpy as jnp
import optax

from xentcheck.problem import Problem

from . import ALL_FLOATS, ALL_REDUCTIONS, Binding, Capabilities, Inputs
from .jax_config import host_array, ones_like


def _classifier(x, p: Problem) -> tuple:
    """W and the bias (None without one) in ``x``'s dtype, as the binding receives them (the errors
    layer's malformed W or bias)."""
    wm, bias = p.handed_linear()
    # cast on the host (jnp.asarray casts on the device, compiling a convert per shape; the values are
    # the dtype's already)
    return jax.device_put(host_array(wm, x.dtype)), None if bias is None else jax.device_put(host_array(bias, x.dtype))


def _step(loss: Callable) -> Callable:
    """A ``step`` from ``loss(X2d, W, b, target1d, problem)``: the loss and the flat gradient (dX, dW, db)."""

    def step(x, inp: Inputs, compiled: bool):
        p = inp.problem
        w, b = _classifier(x, p)
        args = (x, w) if b is None else (x, w, b)
        t, lead = inp.target.reshape(-1), x.shape[:-1]

        def f(x_, w_, *b_):
            y = loss(x_.reshape(-1, x_.shape[-1]), w_, b_[0] if b_ else None, t, p)
            return y.reshape(lead) if p.reduction == "none" else y

        y, pullback = jax.vjp(jax.jit(f) if compiled else f, *args)
        grads = pullback(ones_like(y) if inp.cotangent is None else inp.cotangent.reshape(y.shape))
        return y, jnp.concatenate([g.reshape(-1) for g in grads])

    return step


def _forward(loss: Callable) -> Callable:
    """The forward alone (probing, reproduction), with W and b as constants."""

    def fn(x, inp: Inputs):
        w, b = _classifier(x, inp.problem)
        return loss(x.reshape(-1, x.shape[-1]), w, b, inp.target.reshape(-1), inp.problem)

    return fn


def _reduce(per_row, p: Problem):
    return {"none": per_row, "sum": jnp.sum(per_row), "mean": jnp.mean(per_row)}[p.reduction]


def _optax_unfused(x, w, b, t, p: Problem):
    z = x @ w.T if b is None else x @ w.T + b
    return _reduce(optax.softmax_cross_entropy_with_integer_labels(z, t), p)


def _tokamax(x, w, b, t, p: Problem):
    import tokamax

    return tokamax.linear_softmax_cross_entropy_loss(x, t, w.T, reduction=p.reduction, implementation="xla")


def environment() -> dict:
    """tokamax's version where it is installed, else why its binding is left out."""
    if importlib.util.find_spec("tokamax") is None:
        return {"linear_ce.skipped": "tokamax is not installed; its linear_ce binding is skipped (pip install tokamax)"}
    try:
        return {"tokamax": version("tokamax")}
    except PackageNotFoundError:
        return {"tokamax": "unknown"}


def bindings() -> list[Binding]:
    """The linear_ce bindings of the jax adapter (tokamax's where it is installed)."""
    index = frozenset({"index"})
    out = [
        Binding(
            "optax.softmax_cross_entropy_with_integer_labels+linear",
            "optax.softmax_cross_entropy_with_integer_labels(X @ W.T + b, y)",
            Capabilities("linear_ce", index, ALL_REDUCTIONS, frozenset({"bias"}), ALL_FLOATS),
            _forward(_optax_unfused),
            doc="JAX's unfused baseline: the N x V logits materialised in the input dtype, then jnp.sum / jnp.mean",
            step=_step(_optax_unfused),
        )
    ]
    if importlib.util.find_spec("tokamax") is not None:
        out.append(
            Binding(
                "tokamax.linear_softmax_cross_entropy_loss",
                "tokamax.linear_softmax_cross_entropy_loss(X, y, W.T, implementation='xla')",
                Capabilities("linear_ce", index, frozenset({"sum", "mean"}), frozenset(), ALL_FLOATS),
                _forward(_tokamax),
                doc="tokamax's fused op, its XLA implementation (the Mosaic one is TPU-only)",
                step=_step(_tokamax),
            )
        )
    return out
