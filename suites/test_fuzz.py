"""The fuzzer (xentcheck/fuzz.py) in the run: per binding, Hypothesis draws whole problems within its
declared capabilities, biased toward special values (zeros, signed zeros, subnormals, the largest
finite values, +-inf, NaN, empty batches), and judges the value and gradient of each draw as the
catalog's checks are judged (the oracle, the registry's conditions on the input). Findings are grouped
by their finding key (binding, check, the properties of the input that hold), each with a repro line.

The default run draws a fixed, derandomised few per binding (--relation-examples, default 2): a finding
fails the item and Hypothesis shrinks it. ``--fuzz`` runs a campaign (random draws, Hypothesis's example
database): a finding is recorded and the draws go on, since one binding often shows several behaviours
and HypoFuzz stops fuzzing a target at its first failure; the item fails at its end if it found
anything. Each test is a plain ``@given`` test, so HypoFuzz runs the same items as fuzz targets
(``./run fuzz``, docs/fuzzing.md). What each binding saw (draws, seconds, outcomes, the registry entries
that fired, the findings) goes into the results file's ``fuzz`` section, and under ``--fuzz`` also into
a file per process under ``<results folder>/fuzz/`` that ``python -m reports build`` merges.
Ids read ``framework-binding``."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from suites.plugin import session_of
from suites.plugin.fuzzing import tally_of
from xentcheck import fuzz


def _skip_reason(xs, fw: str, binding) -> str | None:
    caps = binding.caps
    if not (frozenset(xs.options.dtypes_for(fw, sorted(caps.dtypes))) & caps.dtypes) or not caps.targets:
        return "no dtype, target kind or reduction of the run's to draw"
    if not caps.reductions:
        return "no dtype, target kind or reduction of the run's to draw"
    if caps.op not in fuzz.OPS:
        return (
            f"the fuzzer draws logits or probabilities; op {caps.op}'s hidden states and classifier are "
            f"not drawn yet (its catalog cases, interactions and relations check it)"
        )
    return None


#: the config of the run that collected this module. The test takes no fixture, not even pytestconfig:
#: HypoFuzz tears a target's fixtures down at every switch between targets and cannot set them up again
_RUN: list[pytest.Config] = []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fuzz_binding" in metafunc.fixturenames:
        _RUN[:] = [metafunc.config]
        xs = session_of(metafunc.config)
        params = []
        for fw in xs.load_adapters():
            if not xs.options.all_layers(fw):
                continue
            for name, binding in xs.bindings(fw).items():
                reason = _skip_reason(xs, fw, binding)
                marks = [pytest.mark.skip(reason=reason)] if reason else []
                params.append(pytest.param((fw, name), id=f"{fw}-{name}", marks=marks))
        metafunc.parametrize("fuzz_binding", params)


@fuzz.profile()
@given(data=st.data())
def test_fuzz(fuzz_binding, data) -> None:
    config = _RUN[0]
    xs = session_of(config)
    fw, name = fuzz_binding
    tally = tally_of(config)
    binding, adapter = xs.bindings(fw)[name], xs.adapters[fw]
    caps = binding.caps
    dtypes = frozenset(xs.options.dtypes_for(fw, sorted(caps.dtypes))) & caps.dtypes
    p = data.draw(fuzz.problems(caps, dtypes), label="problem")
    t = tally.binding(fw, name, caps.op)
    campaign = bool(xs.options.fuzz)
    found = []
    started = time.perf_counter()
    for check in ("value", "grad") if caps.grad else ("value",):
        rec = xs.judge.check(adapter, binding, p, check)
        t.add(rec.outcome, rec.expectation)
        if rec.outcome in ("fail", "error"):
            key = fuzz.finding_key(name, check, p)
            repro = fuzz.repro_line(p)
            tally.find(t, key, check, rec.outcome, rec.reason or "", repro, int(p.x.size))
            found.append(f"finding {key}: {rec.outcome}: {rec.reason} | draw: {repro}")
    tally.draw(t, started, time.perf_counter())
    tally.flush()
    if found and not campaign:
        raise AssertionError("\n".join(found))
