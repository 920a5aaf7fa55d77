"""Triton loads before TensorFlow wherever an adapter may load TensorFlow (adapters.load_triton_first).

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


@pytest.mark.parametrize(
    "code",
    [
        "from adapters import load_builtin\nload_builtin('tensorflow')\nload_builtin('torch')\n",
        "import adapters.tensorflow_keras\nimport adapters.pytorch\n",
    ],
)
def test_tensorflow_adapter_loads_triton_first(code):
    """The TensorFlow adapter (through load_builtin or imported directly) has Triton loaded before it, so
    the torch adapter's linear_ce libraries and torch.compile work after it in the same process."""
    compile_ = "import torch\nprint(torch.compile(lambda x: x * 2)(torch.ones(2)).tolist())\nprint('ok')\n"
    out = _run(code + compile_)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_the_adapters_package_alone_imports_no_framework():
    """Harness processes (the plugin imports the adapters package) pay for neither torch nor Triton."""
    out = _run("import sys\nimport adapters\nprint(sorted(m for m in ('torch', 'triton') if m in sys.modules))\n")
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-2000:]
