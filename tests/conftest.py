"""Fixtures of the harness self-tests."""

import pytest

from .runs import ROOT

pytest_plugins = ["pytester"]


@pytest.fixture
def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run ``pytest ARGS`` at the repository root in a child process (pytester's subprocess mode: the
    plugin, the real suites and a fresh interpreter, as a user runs them)."""
    monkeypatch.chdir(ROOT)

    def run(*args: str, timeout: float = 600) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:randomly", *args, timeout=timeout)

    return run
