"""Imported ground truth: every case that carries expected values from an outside source (the ONNX
corpus in cases/imported/, a user's --cases) checks the oracle against them, a second, independent
judge; a disagreement beyond the source's rounding fails the oracle here. The bindings are judged on
these cases by the conformance suite, as on every other case. Ids read ``case-op``."""

import pytest

from suites.plugin import session_of
from xentcheck.ground_truth import oracle_vs_expected


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "imported_case" in metafunc.fixturenames:
        cases = [(c, op) for c in session_of(metafunc.config).cases.values() if c.expected is not None for op in c.ops]
        metafunc.parametrize("imported_case", cases, ids=[f"{c.name}-{op}" for c, op in cases])


def test_oracle_agrees_with_imported_values(imported_case) -> None:
    case, op = imported_case
    c = oracle_vs_expected(case.problem(op, case.dtypes[0], case.reductions[0]), case.expected)
    if not c.ok:
        pytest.fail(
            f"the oracle disagrees with {case.name}'s expected values ({case.expected['source']}): {c.detail}",
            pytrace=False,
        )
