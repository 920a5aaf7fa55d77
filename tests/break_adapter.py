"""A pytest plugin for the self-tests (``-p tests.break_adapter``): the numpy adapter fails as a broken
install would (XC_BREAK=import), or numpy looks not installed (XC_BREAK=missing)."""

import os

from adapters import AdapterError


def pytest_load_initial_conftests(early_config, parser, args) -> None:
    import suites.plugin.session as session

    how = os.environ.get("XC_BREAK")
    real_load, real_missing = session.load_builtin, session.missing_packages

    def load(name):
        if name == "numpy" and how == "import":
            raise AdapterError("numpy: importing its adapter failed: ImportError: planted by tests/break_adapter.py")
        return real_load(name)

    def missing(name):
        return ["numpy"] if name == "numpy" and how == "missing" else real_missing(name)

    session.load_builtin, session.missing_packages = load, missing
