"""Capabilities verified, not only declared (``--probe-capabilities``): every binding called with each
target kind, option, reduction and dtype its op admits and it does not declare. Ids read
``framework-binding-facet-value``. Informational: the result (works / wrong / raises) goes into the
results file and the capability table, and an item never fails."""

import pytest

from suites.plugin import session_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "probe_spec" in metafunc.fixturenames:
        specs = session_of(metafunc.config).probe_specs()
        metafunc.parametrize("probe_spec", specs, ids=[s.test_id for s in specs])


def test_probe(probe_spec, request: pytest.FixtureRequest) -> None:
    found = session_of(request.config).run_probe(probe_spec)
    if found["result"] != "works":
        pytest.skip(f"{found['result']}: {found['detail']}")
