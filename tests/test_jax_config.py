"""JAX lowering into a shared MLIR context (adapters/jax_config.py): the same modules as JAX's own
context per lowering, one context per thread, a fresh one every RENEW_EVERY lowerings."""

import threading

import pytest

jax = pytest.importorskip("jax")

from jax._src.interpreters import mlir  # noqa: E402

from adapters import jax_config  # noqa: E402


def _lowered_texts() -> list[str]:
    """What JAX lowers for a softmax cross-entropy, its gradient and a float16 reduction."""
    import jax.numpy as jnp

    x = jnp.linspace(-3.0, 3.0, 15, dtype=jnp.float32).reshape(3, 5)

    def loss(z):
        return -jax.nn.log_softmax(z)[:, 1].sum()

    return [
        jax.jit(loss).lower(x).as_text(),
        jax.jit(jax.grad(loss)).lower(x).as_text(),
        jax.jit(lambda z: z.astype(jnp.float16).mean()).lower(x).as_text(),
    ]


def test_a_shared_context_lowers_the_same_modules_as_a_context_per_lowering(monkeypatch):
    jax_config.share_mlir_context()
    shared = _lowered_texts()
    assert mlir.make_ir_context.xentcheck_shared
    monkeypatch.setattr(mlir, "make_ir_context", mlir.make_ir_context.__wrapped__)
    jax.clear_caches()  # lower again, each into a context of its own
    assert _lowered_texts() == shared


def test_each_thread_has_its_context_and_a_fresh_one_every_renew_every_lowerings(monkeypatch):
    made = []

    def fresh():
        made.append(object())
        return made[-1]

    monkeypatch.setattr(mlir, "make_ir_context", fresh)
    assert jax_config.share_mlir_context(renew_every=3)
    here = [mlir.make_ir_context() for _ in range(4)]
    assert here[0] is here[1] is here[2] is made[0] and here[3] is made[1]
    other = []
    t = threading.Thread(target=lambda: other.append(mlir.make_ir_context()))
    t.start()
    t.join()
    assert other[0] is made[2]  # not this thread's
    assert jax_config.share_mlir_context() and len(made) == 3  # wrapping twice changes nothing


def test_the_environment_says_how_jax_lowers(monkeypatch):
    monkeypatch.setattr(mlir, "make_ir_context", lambda: object())
    assert jax_config.mlir_context() == "one MLIR context per lowering (JAX's own)"
    jax_config.share_mlir_context()
    assert jax_config.mlir_context().startswith("one MLIR context per thread, renewed every")


def test_a_jax_without_make_ir_context_runs_as_it_comes(monkeypatch):
    monkeypatch.delattr(mlir, "make_ir_context")
    assert jax_config.share_mlir_context() is False
