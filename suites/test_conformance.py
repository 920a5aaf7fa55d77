"""Values and gradients of every binding against the reference oracle.

One test per binding x case x dtype x mode, running every selected reduction and check (value, grad)
of it (:class:`~xentcheck.check.Bundle`); ids read ``framework-binding-case-dtype-mode``, and ``-k``
selects checks by their own ids, ``framework-binding-case-dtype-mode-reduction-check``. The verdict
logic lives in :mod:`xentcheck.checks`; this file only parametrises and reports.
"""

import pytest

from suites.plugin import attach, fail_or_skip, session_of
from xentcheck.check import Bundle


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "spec" in metafunc.fixturenames:
        bundles = Bundle.of(session_of(metafunc.config).specs())
        metafunc.parametrize("spec", bundles, ids=[b.test_id for b in bundles])


def test_conformance(spec: Bundle, request: pytest.FixtureRequest) -> None:
    xs = session_of(request.config)
    recs = [xs.run(check) for check in spec.checks]
    for rec in recs:
        attach(request, rec)
    fail_or_skip(*recs)
