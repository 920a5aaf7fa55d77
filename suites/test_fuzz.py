"""The fuzzer (xentcheck/fuzz.py) in the run: per binding, Hypothesis draws whole problems within its
declared capabilities, biased toward special values (zeros, signed zeros, subnormals, the largest
finite values, +-inf, NaN, empty batches), and judges the value and gradient of each draw as the
catalog's checks are judged (the oracle, the registry's conditions on the input). A draw that fails or
errs is shrunk to a minimal example and reported with its finding key (binding, check, the properties
of the input that hold) and a repro line. The default run draws a fixed, derandomised few per binding
(--fuzz-examples, default 2); --fuzz runs a campaign (200 draws, Hypothesis's example database);
long campaigns run under HypoFuzz (docs/fuzzing.md). Ids read ``framework-binding``."""

import json

import pytest
from hypothesis import HealthCheck, given, settings

from suites.plugin import session_of
from suites.plugin.hooks import FUZZ_KEY
from xentcheck import fuzz

#: draws per binding in the default run (derandomised: the same draws every run), and under --fuzz
DEFAULT_DRAWS, CAMPAIGN_DRAWS = 2, 200


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fuzz_binding" in metafunc.fixturenames:
        xs = session_of(metafunc.config)
        specs = [(fw, name) for fw in xs.load_adapters() if xs.options.all_layers(fw) for name in xs.bindings(fw)]
        metafunc.parametrize("fuzz_binding", specs, ids=["-".join(s) for s in specs])


def test_fuzz(fuzz_binding, request: pytest.FixtureRequest) -> None:
    xs = session_of(request.config)
    fw, name = fuzz_binding
    binding, adapter = xs.bindings(fw)[name], xs.adapters[fw]
    caps = binding.caps
    dtypes = frozenset(xs.options.dtypes_for(fw, sorted(caps.dtypes))) & caps.dtypes
    if not dtypes or not caps.targets or not caps.reductions:
        pytest.skip("no dtype, target kind or reduction of the run's to draw")
    if caps.op not in fuzz.OPS:
        pytest.skip(
            f"the fuzzer draws logits or probabilities; op {caps.op}'s hidden states and classifier are "
            f"not drawn yet (its catalog cases, interactions and relations check it)"
        )
    campaign = bool(xs.options.fuzz)
    checks = ("value", "grad") if caps.grad else ("value",)

    @settings(
        derandomize=not campaign,
        max_examples=CAMPAIGN_DRAWS if campaign else DEFAULT_DRAWS,
        deadline=None,
        database=settings.default.database if campaign else None,
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz.problems(caps, dtypes))
    def draw(p):
        for check in checks:
            rec = xs.judge.check(adapter, binding, p, check)
            if rec.outcome == "deviation" and rec.expectation:
                fired.update(rec.expectation.split("+"))
            if rec.outcome in ("fail", "error"):
                raise AssertionError(
                    f"finding {fuzz.finding_key(name, check, p)}: {rec.outcome}: {rec.reason} "
                    f"| draw: {fuzz.repro_line(p)}"
                )

    fired: set[str] = set()
    try:
        draw()
    finally:  # the entries the draws showed count for the registry audit (this layer writes no record)
        request.node.user_properties.append((FUZZ_KEY, json.dumps(sorted(fired))))
