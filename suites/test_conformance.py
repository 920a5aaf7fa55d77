"""Values and gradients of every binding against the reference oracle.

One test per binding x case x dtype x reduction x check (value or grad); ids read
``framework-binding-case-dtype-mode-reduction-check`` so ``-k`` selects any slice. The verdict logic
lives in :mod:`xentcheck.checks`; this file only parametrises and reports.
"""

import pytest

from suites.plugin import attach, fail_or_skip, session_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "spec" in metafunc.fixturenames:
        specs = session_of(metafunc.config).specs()
        metafunc.parametrize("spec", specs, ids=[s.test_id for s in specs])


def test_conformance(spec, request: pytest.FixtureRequest) -> None:
    rec = session_of(request.config).run(spec)
    attach(request, rec)
    fail_or_skip(rec)
