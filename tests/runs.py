"""Running the suite in a child pytest process, for tests of the plugin end to end."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest_run(*args, cwd=ROOT):
    """A plain subprocess run (for module-scoped fixtures; tests use the ``run_suite`` fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
