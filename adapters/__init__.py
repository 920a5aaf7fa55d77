"""Adapters: one module per framework, and the loaders of built-in and external adapters.

Each module exposes ``ADAPTER``, an object following the protocol of :mod:`xentcheck.protocol` (the
types are re-exported here for adapter modules): it knows its framework's arrays, devices and
autodiff, and lists its *bindings*, one native cross-entropy API each, with the capabilities it
declares and the convention it documents. Built-in adapters are listed in :data:`BUILTIN`; an
external one (a custom kernel) is any object satisfying ``Adapter``, passed as
``--adapter=module:attr``. :class:`adapters.framework.FrameworkAdapter` implements the shared run
loop, timing closures and reproduction snippets for array frameworks.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from xentcheck.exception_text import one_line
from xentcheck.protocol import (  # re-exported: adapters import the protocol from here
    ALL_FLOATS,
    ALL_REDUCTIONS,
    FLOATS,
    Adapter,
    Binding,
    Capabilities,
    Inputs,
    Output,
    WorkerGroup,
)

__all__ = [
    "ALL_FLOATS",
    "ALL_REDUCTIONS",
    "BUILTIN",
    "FLOATS",
    "Adapter",
    "AdapterError",
    "Binding",
    "Capabilities",
    "Inputs",
    "Output",
    "WorkerGroup",
    "load_builtin",
    "load_triton_first",
    "load_external",
    "missing_packages",
]

#: framework name -> (adapter module, or module:ATTR, and the top-level packages it needs installed)
BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "numpy": ("adapters.numpy_scipy", ("numpy", "scipy")),
    "torch": ("adapters.pytorch", ("torch",)),
    "tensorflow": ("adapters.tensorflow_keras", ("tensorflow",)),
    "jax": ("adapters.jax_optax", ("jax", "optax")),
    # Keras 3 on its other backends, each in a worker process of its own (Keras on TensorFlow is in "tensorflow")
    "keras[jax]": ("adapters.keras_backends:JAX", ("keras", "jax")),
    "keras[torch]": ("adapters.keras_backends:TORCH", ("keras", "torch")),
    "keras[numpy]": ("adapters.keras_backends:NUMPY", ("keras",)),
}


def load_triton_first() -> None:
    """Import Triton, where it is installed, before TensorFlow can load: the one place that orders them.

    Triton (op linear_ce's Liger-Kernel and Cut Cross-Entropy kernels, and torch.compile's Inductor) and
    TensorFlow both carry LLVM and register its command-line options; when Triton loads second the
    process aborts ("LLVM ERROR: inconsistency in registered CommandLine options"), and torch._dynamo
    imports Triton lazily, at the first torch.compile. :func:`load_builtin` calls this before the torch
    and TensorFlow adapters, and those modules call it at their import too (a direct import is safe), so
    every process that runs them has Triton first (tests/test_triton_first.py). Without CUDA, Triton runs
    its kernels in its interpreter (Liger-Kernel on CPU), which it decides at its own import:
    ``TRITON_INTERPRET=1`` is set before it. Harness processes that load neither adapter import nothing."""
    if "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    import triton  # noqa: F401


class AdapterError(Exception):
    """An adapter that cannot be loaded; the message is one line saying what to do."""


def missing_packages(framework: str) -> list[str]:
    """Which packages a built-in framework needs that are not installed (without importing them)."""
    _, needs = BUILTIN[framework]
    return [pkg for pkg in needs if importlib.util.find_spec(pkg) is None]


def load_builtin(framework: str) -> Adapter:
    """Import and return a built-in adapter; raises AdapterError with one line on failure."""
    module_name, _ = BUILTIN[framework]
    module_name, _, attr = module_name.partition(":")
    try:
        if framework in ("torch", "tensorflow"):
            load_triton_first()
        module = importlib.import_module(module_name)
    except Exception as e:  # a broken install must not take the other frameworks down
        raise AdapterError(f"{framework}: importing its adapter failed: {one_line(e)}") from None
    return getattr(module, attr or "ADAPTER")


def _import_file(path: Path):
    """Import a Python file as a module named after it (its folder first on sys.path, so the modules
    beside it import too)."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def load_external(spec: str) -> Adapter:
    """Load ``module:attr`` or ``path/to/file.py:attr`` (an adapter object or a zero-argument factory
    returning one). A module is imported from ``sys.path``; a file by its path (relative to the
    current folder)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise AdapterError(
            f"--adapter={spec}: expected MODULE:ATTR or path/to/file.py:ATTR, e.g. --adapter=my_kernels.xent:ADAPTER"
        )
    is_file = module_name.endswith(".py") or "/" in module_name or os.sep in module_name
    try:
        if is_file:
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise AdapterError(
                    f"--adapter={spec}: no file {path}; give a path to a .py file (relative to "
                    f"the folder you run from) or an importable MODULE"
                )
            module = _import_file(path)
        else:
            module = importlib.import_module(module_name)
        obj = getattr(module, attr)
    except AdapterError:
        raise
    except ModuleNotFoundError as e:
        raise AdapterError(
            f"--adapter={spec}: module not found ({e}); give its file "
            f"(--adapter=path/to/file.py:{attr}), install it, or run from its folder"
        ) from None
    except AttributeError:
        raise AdapterError(f"--adapter={spec}: module {module_name!r} has no attribute {attr!r}") from None
    except Exception as e:
        raise AdapterError(f"--adapter={spec}: importing failed: {type(e).__name__}: {e}") from None
    if callable(obj) and not isinstance(obj, Adapter):
        try:
            obj = obj()
        except Exception as e:
            raise AdapterError(f"--adapter={spec}: the factory {attr}() raised {one_line(e)}") from None
    if not isinstance(obj, Adapter) or not isinstance(getattr(obj, "name", None), str):
        raise AdapterError(f"--adapter={spec}: object lacks name/environment/bindings/run (see adapters.Adapter)")
    if obj.name in BUILTIN:  # it would silently stand in for the built-in adapter's results
        raise AdapterError(
            f"--adapter={spec}: its name {obj.name!r} is a built-in framework's; give the adapter "
            f"another name (e.g. {obj.name + '_kernels'!r})"
        )
    return obj
