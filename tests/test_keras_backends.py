"""Keras on a backend of its own in a worker process (adapters/keras_backends.py): declarations, checks,
relayed exceptions and a worker that dies. Uses Keras's NumPy backend (no autodiff framework needed)."""

import os
import signal

import pytest

pytest.importorskip("keras")

from adapters.keras_backends import KerasBackend, RemoteError  # noqa: E402
from cases import load_catalog  # noqa: E402
from xentcheck.checks import Judge  # noqa: E402
from xentcheck.exception_text import raised_at  # noqa: E402
from xentcheck.expectations import Registry  # noqa: E402

CASES = {c.name: c for c in load_catalog()}


@pytest.fixture(scope="module")
def adapter():
    a = KerasBackend("numpy")
    yield a
    a._stop()


def _binding(adapter, name):
    return next(b for b in adapter.bindings() if b.name == name)


def test_the_worker_declares_the_keras_bindings_of_its_backend(adapter):
    env = adapter.environment()
    assert env["keras.backend"] == "numpy" and adapter.name == "keras[numpy]"
    names = {b.name for b in adapter.bindings()}
    # the loss classes and functions, keras.ops and keras.metrics, each from logits and from probabilities
    assert "keras.SparseCategoricalCrossentropy.from_logits" in names and len(names) == 24
    assert not any(b.caps.grad for b in adapter.bindings())  # the NumPy backend has no autodiff


def test_a_check_runs_in_the_worker_and_is_judged_here(adapter):
    b = _binding(adapter, "keras.sparse_categorical_crossentropy.from_logits")
    p = CASES["random_index"].problem("softmax_ce", "float32", "none")
    rec = Judge(Registry(), {}).check(adapter, b, p, "value")
    assert rec.outcome == "pass", rec.reason
    assert rec.result_dtype == "float32"


def test_an_exception_comes_back_with_its_name_and_where_it_was_raised(adapter):
    b = _binding(adapter, "keras.categorical_crossentropy.from_logits")
    p = CASES["target_class_mismatch"].problem("softmax_ce", "float32", "none")
    with pytest.raises(Exception) as info:
        adapter.run(b, p, grad=False, cotangent=None)
    e = info.value
    assert type(e).__name__ == "ValueError" and isinstance(e, ValueError)  # a builtin stays itself
    assert raised_at(e).startswith("keras/") and "must have the same shape" in str(e)
    assert issubclass(type(_rebuild_named("InvalidArgumentError")), RemoteError)


def _rebuild_named(name):
    from adapters.keras_backends import _rebuild

    return _rebuild(name, [name, "Exception"], "m", "x.py:1")


def test_a_worker_that_dies_costs_one_check_and_is_restarted(adapter):
    b = _binding(adapter, "keras.sparse_categorical_crossentropy.from_logits")
    p = CASES["random_index"].problem("softmax_ce", "float32", "none")
    adapter.run(b, p, grad=False, cotangent=None)  # the worker is up (the declaration may come from the cache)
    os.kill(adapter._proc.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match=r"keras\[numpy\]: its worker process died"):
        adapter.run(b, p, grad=False, cotangent=None)
    assert adapter.run(b, p, grad=False, cotangent=None).value.shape == (16,)  # a fresh worker answers


def test_a_declaration_is_cached_so_collecting_starts_no_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("XENTCHECK_KERAS_CACHE", str(tmp_path))
    first = KerasBackend("numpy")
    names = [b.name for b in first.bindings()]
    assert first._proc is not None and list(tmp_path.glob("numpy-*.json"))  # asked a worker, kept its answer
    first._stop()
    second = KerasBackend("numpy")
    assert [b.name for b in second.bindings()] == names and second._proc is None
    assert second.environment() == first.environment()
    (next(tmp_path.glob("numpy-*.json"))).write_bytes(b"not JSON")  # a damaged cache: ask a worker again
    third = KerasBackend("numpy")
    assert [b.name for b in third.bindings()] == names and third._proc is not None
    third._stop()
    monkeypatch.setenv("XENTCHECK_KERAS_CACHE", "off")
    off = KerasBackend("numpy")
    off.bindings()
    assert off._proc is not None
    off._stop()


def test_one_process_at_a_time_builds_a_declaration(tmp_path):
    # every xdist worker collects; in a cold run all would start the same Keras worker to declare it
    import threading
    import time

    from adapters.keras_backends import _exclusive

    lock, spans = tmp_path / "decl.json.lock", []

    def hold() -> None:
        with _exclusive(lock):
            t0 = time.monotonic()
            time.sleep(0.2)
            spans.append((t0, time.monotonic()))

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans.sort()
    assert len(spans) == 3 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
