"""Relations inside each framework (index = one-hot, shift invariance, smoothing = soft targets, ...),
on inputs drawn by hypothesis; see :mod:`xentcheck.relations`. Ids read
``framework-binding-relation-dtype``, so ``-k shift_invariance`` selects one relation everywhere."""

import pytest

from suites.plugin import attach, fail_or_skip, session_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "relation_spec" in metafunc.fixturenames:
        specs = session_of(metafunc.config).relation_specs()
        metafunc.parametrize("relation_spec", specs, ids=[s.test_id for s in specs])


def test_relation(relation_spec, request: pytest.FixtureRequest) -> None:
    rec = session_of(request.config).run_relation(relation_spec)
    attach(request, rec)
    fail_or_skip(rec)
