"""Keras 3 on its JAX, PyTorch and NumPy backends: each one a framework of its own (``keras[jax]``,
``keras[torch]``, ``keras[numpy]``) beside Keras on TensorFlow (in the ``tensorflow`` adapter).

A Keras backend is fixed when Keras is imported, so each backend runs in a worker process of its own
(``python -m adapters.keras_backends BACKEND``), started on first use and spoken to over a pipe with
pickled requests: the same bindings as on TensorFlow (``adapters.keras_losses``), the same cases, one
pytest run, one results file. What a worker declares (its environment and bindings) is cached on disk
(as JSON validated on read, ``adapters.declaration_cache``: data, never code),
keyed on the installed versions and the harness's source, so a process that only collects the checks
(pytest-xdist's controller and the workers that run other groups) starts no Keras worker. A worker
that dies costs the check it was running (an ``error``) and is restarted for the next one; a backend
whose packages are missing is skipped like any framework.
Exceptions come back with their class name, their classes' names and where they were raised, so the
errors layer judges them as if raised in-process.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from xentcheck.problem import Problem, numpy_dtype
from xentcheck.protocol import Binding, Output, WorkerGroup
from xentcheck.safe_output import OutputError, open_lock, write_atomic

from . import declaration_cache, keras_losses
from .framework import FrameworkAdapter, lines_up
from .jax_config import host_array, ones_like

ROOT = Path(__file__).resolve().parents[1]
#: backend -> the package its autodiff and arrays come from (None: no autodiff)
BACKENDS = {"jax": "jax", "torch": "torch", "numpy": None}


class RemoteError(Exception):
    """An exception raised in a Keras worker whose class is not a Python builtin (``InvalidArgumentError``)."""


def _rebuild(type_name: str, mro: list[str], message: str, at: str) -> Exception:
    """The worker's exception as one of the same name here: a builtin class where it is one (so a
    TypeError is still a TypeError), else a RemoteError subclass of that name."""
    base = getattr(builtins, type_name, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = type(type_name, (RemoteError,), {})
    e = base(message)
    e.remote_at, e.remote_types = at, tuple(mro)
    return e


@dataclass
class _Declared:
    """A binding as the worker declares it (everything but the callable, which runs in the worker)."""

    name: str
    api: str
    caps: Any
    convention: Any
    doc: str


#: where each backend's worker group is handed out among all adapters' groups (JAX's is long)
_RANKS = {"jax": 13, "torch": 21, "numpy": 22}


class KerasBackend:
    """The adapter the run sees for one Keras backend: it declares the worker's bindings and forwards
    every call to the worker process."""

    dialect = None  # no reproduction snippets: they would need the backend set before Keras is imported
    #: the run's device, bound once at start-up (the session sets it); each call hands it to the worker
    device = "cpu"

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.name = f"keras[{backend}]"
        #: one xdist worker group per backend (xentcheck.protocol.WorkerGroup), ranked by its length
        self.worker_groups = (WorkerGroup(self.name, _RANKS[backend]),)
        self._proc: subprocess.Popen | None = None
        self._hello: dict | None = None

    # -- the worker -------------------------------------------------------------------------------
    def _declaration(self) -> dict:
        """The worker's hello (environment and bindings): from the cache, else from a worker started now."""
        if self._hello is None:
            path = _declaration_cache(self.backend)
            # data only (JSON, validated): a planted or stale file is ignored and a worker asked instead
            self._hello = declaration_cache.load(path, _Declared) if path else None
            if self._hello is None and path:
                # every pytest-xdist worker collects, and all would start this backend at once to declare it
                # (a cold run): the first builds the cache, the others wait for it and read it
                with _exclusive(path.with_name(path.name + ".lock")):
                    self._hello = declaration_cache.load(path, _Declared)
                    if self._hello is None:
                        self._start()
                        try:
                            write_atomic(path, declaration_cache.dumps(self._hello))
                        except (OSError, ValueError, TypeError):
                            pass  # a cache that cannot be written costs a start next time, nothing else
            if self._hello is None:
                self._start()
        return self._hello

    def _start(self) -> None:
        env = {**os.environ, "KERAS_BACKEND": self.backend, "PYTHONPATH": str(ROOT)}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "adapters.keras_backends", self.backend],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        reply = self._receive()
        if reply[0] != "hello":
            raise RuntimeError(f"{self.name}: its worker failed to start: {reply[1]}")
        self._hello = reply[1]

    def _receive(self):
        try:
            return pickle.load(self._proc.stdout)
        except (EOFError, pickle.UnpicklingError, OSError) as e:
            code = self._proc.poll()
            self._stop()
            raise RuntimeError(
                f"{self.name}: its worker process died (exit status {code}); it is restarted for the next check"
            ) from e

    def _stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _ask(self, *request):
        if self._proc is None:
            self._start()
        try:
            pickle.dump(request, self._proc.stdin)
            self._proc.stdin.flush()
            return self._receive()
        except BaseException:  # interrupted mid-request (a timeout): a stale reply must never be read later
            self._stop()
            raise

    # -- the adapter protocol ---------------------------------------------------------------------
    def environment(self) -> dict:
        return self._declaration()["environment"]

    def bindings(self) -> list[Binding]:
        return [
            Binding(d.name, d.api, d.caps, fn=None, convention=d.convention, doc=d.doc)
            for d in self._declaration()["bindings"]
        ]

    def run(
        self, binding: Binding, problem: Problem, *, grad: bool, cotangent: np.ndarray | None, mode: str = "eager"
    ) -> Output:
        reply = self._ask("run", binding.name, problem, grad, cotangent, mode, self.device)
        if reply[0] == "ok":
            return reply[1]
        raise _rebuild(*reply[1:])


@contextlib.contextmanager
def _exclusive(lock: Path):
    """Hold an exclusive lock on the file ``lock`` (created) while the block runs; where it cannot be
    had (an unwritable folder), run the block without it."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open_lock(lock)
    except (OSError, OutputError):
        yield
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _declaration_cache(backend: str) -> Path | None:
    """Where a worker's declaration is cached: a name keyed on the Python, Keras and backend versions and
    on every source file of the harness that shapes a declaration (None: caching is off, with
    XENTCHECK_KERAS_CACHE=off)."""
    root = os.environ.get(
        "XENTCHECK_KERAS_CACHE",
        str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xentcheck" / "keras"),
    )
    if root == "off":
        return None
    key = hashlib.sha256(sys.version.encode())
    for package in ("keras", BACKENDS[backend]):
        if package:
            try:
                key.update(f"{package}={importlib.metadata.version(package)}".encode())
            except importlib.metadata.PackageNotFoundError:
                key.update(f"{package}=none".encode())
    key.update(_source_digest())
    if backend == "jax":  # the environment says how JAX lowers (adapters/jax_config.py)
        key.update(os.environ.get("XENTCHECK_JAX_SHARED_CONTEXT", "").encode())
    return Path(root) / f"{backend}-{key.hexdigest()[:16]}.json"


@functools.cache
def _source_digest() -> bytes:
    """The digest of the harness's source that shapes a declaration (read once per process)."""
    key = hashlib.sha256()
    for source in sorted([*(ROOT / "adapters").glob("*.py"), *(ROOT / "xentcheck").glob("*.py")]):
        key.update(source.read_bytes())
    return key.digest()


# -- the worker process ---------------------------------------------------------------------------


class _Worker(FrameworkAdapter):
    """Keras on one backend, inside the worker: arrays through keras.ops, autodiff through the backend."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        import keras

        self.keras = keras
        self.backend = backend
        self.name = f"keras[{backend}]"

    def environment(self) -> dict:
        import importlib

        env = {"keras": self.keras.__version__, "keras.backend": self.keras.backend.backend()}
        package = BACKENDS[self.backend]
        if package:
            env[package] = importlib.import_module(package).__version__
        if self.backend == "jax":
            from .jax_config import mlir_context

            env["jax.mlir_context"] = mlir_context()
        return env

    def bindings(self) -> list[Binding]:
        out = keras_losses.bindings(grad=BACKENDS[self.backend] is not None)
        if self.backend == "jax":  # as Keras users run JAX: without jax_enable_x64, which has no float64
            out = [replace(b, caps=replace(b.caps, dtypes=b.caps.dtypes - {"float64"})) for b in out]
        return self.declare(out, frozenset({"cpu"}), self.environment())

    def asarray(self, a, dtype):
        a = np.asarray(a, dtype=np.float64)
        if self.backend == "jax":  # cast on the host: JAX casts on the device, compiling a convert per shape
            a = host_array(a, numpy_dtype(dtype))  # (the values are the dtype's already: exact)
        return self.keras.ops.convert_to_tensor(a, dtype=dtype)

    def asindex(self, a):
        return self.keras.ops.convert_to_tensor(np.asarray(a, dtype=np.int64), dtype="int64")

    def value_and_vjp(self, f, x, cotangent):
        # the cotangent in the output's dtype and shape (ones where the loss was meant to be a scalar):
        # a Keras loss may return another dtype or an empty array, which the result contract judges
        if self.backend == "jax":
            import jax

            y, pull = jax.vjp(f, x)
            fits = cotangent is not None and lines_up(cotangent.shape, y.shape)
            cot = cotangent.reshape(y.shape).astype(y.dtype) if fits else ones_like(y)
            return y, pull(cot)[0]
        if self.backend == "torch":
            import torch

            x = x.detach().requires_grad_(True)
            y = f(x)
            fits = cotangent is not None and lines_up(tuple(cotangent.shape), tuple(y.shape))
            cot = cotangent.reshape(y.shape).to(y.dtype) if fits else torch.ones_like(y)
            (g,) = torch.autograd.grad(y, x, grad_outputs=cot, allow_unused=True)
            return y.detach(), torch.zeros_like(x) if g is None else g
        raise NotImplementedError(f"keras[{self.backend}] has no autodiff")

    def to_numpy(self, t):
        name = self.keras.backend.standardize_dtype(t.dtype)
        if self.backend == "torch":  # NumPy has no bfloat16: half precision is widened (exactly) first
            import torch

            t = t.detach().to(dtype=torch.float64) if name in ("bfloat16", "float16") else t.detach()
        return np.asarray(self.keras.ops.convert_to_numpy(t)).astype(np.float64), name


def _serve(backend: str) -> None:
    """Answer requests on stdin until it closes (``python -m adapters.keras_backends BACKEND``)."""
    # Keras imports scikit-learn, where it is installed, for its scikit-learn wrappers alone (guarded:
    # without it Keras defines stand-ins), which no binding uses: a second of every worker's start. The
    # worker imports Keras as where scikit-learn is not installed (None in sys.modules: `import` fails and
    # importlib.util.find_spec says it is absent, as torch._dynamo asks)
    sys.modules["sklearn"] = None
    from xentcheck.exception_text import raised_at
    from xentcheck.protocol import run_binding

    out, inp = sys.stdout.buffer, sys.stdin.buffer
    sys.stdout = sys.stderr  # nothing a framework prints may corrupt the replies

    def reply(*message) -> None:
        pickle.dump(message, out)
        out.flush()

    try:
        if backend == "jax":  # the persistent compilation cache of the jax adapter; float64 stays off
            from .jax_config import configure

            configure(x64=False)
        worker = _Worker(backend)
        bindings = {b.name: b for b in worker.bindings()}
        reply(
            "hello",
            {
                "environment": worker.environment(),
                "bindings": [_Declared(b.name, b.api, b.caps, b.convention, b.doc) for b in bindings.values()],
            },
        )
    except Exception as e:
        reply("failed", f"{type(e).__name__}: {e}")
        return
    while True:
        try:
            request = pickle.load(inp)
        except EOFError:
            return
        _, name, problem, grad, cotangent, mode, device = request
        worker.device = device  # the run's device, as the run bound it into the adapter it sees
        try:
            result = run_binding(worker, bindings[name], problem, grad=grad, cotangent=cotangent, mode=mode)
            reply("ok", result)
        except Exception as e:
            reply("raise", type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)[:4000], raised_at(e))


JAX, TORCH, NUMPY = (KerasBackend(b) for b in ("jax", "torch", "numpy"))

if __name__ == "__main__":  # through the module's own name, so what it pickles names adapters.keras_backends
    from adapters.keras_backends import _serve as serve

    serve(sys.argv[1])
