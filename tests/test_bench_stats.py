"""The run-vs-run timing comparison: no false alarms across many unchanged benchmarks (A/A), and a
planted 25% slowdown is flagged. Samples are synthetic, drawn from a skewed, noisy timing model."""

from dataclasses import replace

import numpy as np
import pytest

from xentcheck.bench import stats
from xentcheck.records import BenchRecord


def _rec(i: int, samples) -> BenchRecord:
    return BenchRecord(
        id=f"b{i}",
        framework="fake",
        binding=f"b{i}",
        api="a",
        op="softmax_ce",
        mode="eager",
        dtype="float32",
        pass_="forward",
        batch=32,
        classes=10,
        device="cpu",
        samples=None if samples is None else list(samples),
    )


def _timings(rng, median_s: float, n: int = 60):
    """Lognormal jitter plus rare large outliers (preemption), as real timings have."""
    t = median_s * rng.lognormal(0.0, 0.08, n)
    t[rng.random(n) < 0.03] *= 3
    return t


@pytest.mark.parametrize("seed", range(5))
def test_aa_comparison_flags_nothing(seed):
    rng = np.random.default_rng(seed)
    base = rng.uniform(1e-5, 1e-1, 300)
    old = [_rec(i, _timings(rng, m)) for i, m in enumerate(base)]
    new = [_rec(i, _timings(rng, m)) for i, m in enumerate(base)]
    changes = stats.compare(old, new)
    assert len(changes) == 300
    assert [c.name for c in changes if c.verdict != "unchanged"] == []


@pytest.mark.parametrize("seed", range(5))
def test_planted_slowdown_is_flagged_and_nothing_else(seed):
    rng = np.random.default_rng(100 + seed)
    base = rng.uniform(1e-5, 1e-1, 300)
    old = [_rec(i, _timings(rng, m)) for i, m in enumerate(base)]
    new = [_rec(i, _timings(rng, m * (1.25 if i == 7 else 1.0))) for i, m in enumerate(base)]
    changes = {c.key[1]: c for c in stats.compare(old, new)}
    assert changes["b7"].verdict == "slower" and 1.15 < changes["b7"].ratio < 1.35
    assert [k for k, c in changes.items() if c.verdict != "unchanged"] == ["b7"]


def test_a_significant_change_below_the_minimum_effect_is_not_flagged():
    rng = np.random.default_rng(1)
    old = [_rec(0, 1e-3 * rng.lognormal(0, 0.01, 200))]
    new = [_rec(0, 1.05e-3 * rng.lognormal(0, 0.01, 200))]
    (c,) = stats.compare(old, new)
    assert c.p_adjusted < 1e-6 and c.verdict == "unchanged"


def test_a_large_change_without_evidence_is_not_flagged():
    old = [_rec(0, [1e-3, 3e-3])]
    new = [_rec(0, [2e-3, 4e-3])]  # two rounds each: no test can tell, and no interval exists
    (c,) = stats.compare(old, new)
    assert c.verdict == "not compared"


def test_faster_is_reported_as_faster():
    rng = np.random.default_rng(2)
    (c,) = stats.compare([_rec(0, _timings(rng, 2e-3))], [_rec(0, _timings(rng, 1e-3))])
    assert c.verdict == "faster" and c.ratio == pytest.approx(0.5, rel=0.1)


def test_only_matching_timed_records_are_compared():
    rng = np.random.default_rng(3)
    old = [_rec(0, _timings(rng, 1e-3)), _rec(1, _timings(rng, 1e-3)), _rec(2, None)]
    new = [_rec(0, _timings(rng, 1e-3)), replace(_rec(1, _timings(rng, 1e-3)), dtype="float64"), _rec(2, [1e-3])]
    assert [(c.key[1], c.verdict) for c in stats.compare(old, new)] == [("b0", "unchanged")]


def test_identical_constant_samples_are_unchanged():
    (c,) = stats.compare([_rec(0, [1e-3] * 10)], [_rec(0, [1e-3] * 10)])
    assert c.p_value == 1.0 and c.verdict == "unchanged"
