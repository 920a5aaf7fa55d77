"""The stability sweep: every binding along the logit-magnitude and probability-to-0/1 axes in every
dtype it declares (see :mod:`xentcheck.stability`); the report draws these as its stability charts.
Ids read ``framework-binding-axis-dtype``. The sweep is a diagnostic: an item fails only when the
binding raised (the per-point verdicts are in the record and the charts; the checks judge)."""

import pytest

from suites.plugin import attach, session_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stability_spec" in metafunc.fixturenames:
        specs = session_of(metafunc.config).stability_specs()
        metafunc.parametrize("stability_spec", specs, ids=[s.test_id for s in specs])


def test_stability(stability_spec, request: pytest.FixtureRequest) -> None:
    rec = session_of(request.config).run_stability(stability_spec)
    attach(request, rec)
    if rec.outcome == "unsupported":
        pytest.skip(rec.reason)
    if rec.outcome == "error":
        pytest.fail(f"error: {rec.reason}", pytrace=False)
