"""Triton loads before TensorFlow in every process that imports the adapters (adapters/__init__.py).

Both carry LLVM and register its command-line options; when Triton (op linear_ce's Liger-Kernel and
Cut Cross-Entropy kernels, torch.compile's Inductor) loads after TensorFlow the process aborts with
"LLVM ERROR: inconsistency in registered CommandLine options". Runs only where both are installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("triton") is None or importlib.util.find_spec("tensorflow") is None,
    reason="needs triton and tensorflow installed",
)


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_triton_after_tensorflow_aborts():
    """The hazard itself (so the next test can fail): Triton imported after TensorFlow kills the process."""
    out = _run("import tensorflow\nimport triton\n")
    assert out.returncode != 0
    assert "registered more than once" in out.stderr or "inconsistency" in out.stderr


def test_adapters_package_loads_triton_before_tensorflow():
    """Importing the adapters package first makes any later order safe: TensorFlow's adapter, then
    Triton (the torch adapter's linear_ce libraries)."""
    out = _run("import adapters\nimport tensorflow\nimport triton\nimport adapters.tensorflow_keras\nprint('ok')\n")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
