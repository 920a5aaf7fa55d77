"""The benchmark sweep (only with ``--bench``): every binding, forward and forward+backward, eager
and compiled, over the chosen sizes, timed by pytest-benchmark.

Ids read ``framework-binding-BATCHxCLASSES-dtype-mode-pass``. Timings are measured, never asserted:
a benchmark fails only when the binding raised. The logic lives in :mod:`xentcheck.bench`.
"""

import pytest

from suites.plugin import attach, session_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bench_spec" in metafunc.fixturenames:
        xs = session_of(metafunc.config)
        if xs.bench is None:
            metafunc.parametrize(
                "bench_spec",
                [pytest.param(None, marks=pytest.mark.skip(reason="benchmarks run only with --bench"))],
                ids=["not-requested"],
            )
            return
        specs = xs.bench_specs()
        metafunc.parametrize("bench_spec", specs, ids=[s.id for s in specs])


def test_speed(bench_spec, benchmark, request: pytest.FixtureRequest) -> None:
    rec = session_of(request.config).run_bench(bench_spec, benchmark)
    attach(request, rec)
    if rec.outcome == "unsupported":
        pytest.skip(rec.reason)
    if rec.outcome == "error":
        pytest.fail(f"error: {rec.reason}", pytrace=False)
