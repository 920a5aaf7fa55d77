"""The median's interval and the stopping rule of the timing loop: the interval is the order-statistic
one the binomial distribution gives, and timing stops for the stated reason (a virtual clock, so
nothing here depends on the machine's load)."""

import math

import numpy as np
import pytest

from xentcheck.bench import precision, stats
from xentcheck.records import BenchRecord


def test_six_rounds_is_the_fewest_with_a_95_percent_interval():
    # P(min < median < max) = 1 - 2 * 0.5**n: 0.9375 for 5 rounds, 0.96875 for 6
    assert precision.median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) is None
    x = [1.05, 1.0, 1.02, 1.3, 1.01, 1.03]
    assert precision.median_ci(x) == (1.0, 1.3)  # the next narrower pair covers only 1 - 2 * 7/64 = 0.78


def test_interval_ranks_follow_the_binomial_distribution():
    n = 50
    x = np.arange(1.0, n + 1)
    low, high = precision.median_ci(list(x))
    k = int(low)  # x is 1..n, so the value is the rank
    # the widest rank pair whose complement has probability <= 5%: 2 * P(Binom(n, 1/2) < k) <= 0.05
    tail = lambda j: sum(math.comb(n, i) for i in range(j)) / 2**n  # noqa: E731
    assert 2 * tail(k) <= 0.05 < 2 * tail(k + 1)
    assert high == n + 1 - k


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_tight_samples_stop_at_the_target_precision():
    clock = Clock()
    s = precision.Stopper(0.03, budget_s=10.0, clock=clock)
    samples = []
    for v in [1.0, 1.01, 0.99, 1.0, 1.005, 0.995, 1.0, 1.0]:
        samples.append(v)
        clock.t += v
        if s.should_stop(samples):
            break
    assert len(samples) == 6 and s.stopped == "precision"


def test_noisy_samples_stop_when_the_budget_is_spent():
    clock = Clock()
    rng = np.random.default_rng(0)
    s = precision.Stopper(0.001, budget_s=0.05, clock=clock)
    samples = []
    while not s.should_stop(samples):
        v = float(1e-3 * rng.lognormal(0, 0.5))
        samples.append(v)
        clock.t += v
    assert s.stopped == "time" and 6 <= len(samples) < 200
    assert precision.relative_half_width(samples, precision.median_ci(samples)) > 0.001


def test_a_slow_call_still_gets_six_rounds_and_the_most_rounds_bound_it():
    clock = Clock()
    s = precision.Stopper(1e-9, budget_s=0.0, clock=clock)  # budget spent at once
    samples = [1.0, 2.0]
    assert not s.should_stop(samples)  # fewer than six: never stop
    samples += [3.0, 4.0, 5.0, 6.0]
    assert s.should_stop(samples) and s.stopped == "time"
    s = precision.Stopper(1e-9, budget_s=1e9, clock=clock, max_rounds=20)
    samples = list(np.linspace(1, 2, 20))
    assert s.should_stop(samples) and s.stopped == "rounds"


def _rec(samples) -> BenchRecord:
    return BenchRecord(
        id="b",
        framework="fake",
        binding="b",
        api="a",
        op="softmax_ce",
        mode="eager",
        dtype="float32",
        pass_="forward",
        batch=32,
        classes=10,
        device="cpu",
        samples=list(samples),
    )


def test_overlapping_intervals_are_no_change_even_when_the_test_is_significant():
    # bimodal timings: the medians differ by 26% and the rank test is sure, but each median's interval
    # spans its two modes and the two meet at 1.3: the runs cannot resolve the change
    old = [1.0] * 25 + [1.3] * 25
    new = [1.3] * 25 + [1.6] * 25
    (c,) = stats.compare([_rec(old)], [_rec(new)])
    assert c.p_value < 1e-6 and c.ratio == pytest.approx(1.45 / 1.15)
    assert c.verdict == "unchanged"
    (c,) = stats.compare([_rec(old)], [_rec([2 * v for v in new])])
    assert c.verdict == "slower"


def test_a_benchmark_timed_once_is_not_compared():
    (c,) = stats.compare([_rec([1.0])], [_rec([5.0])])
    assert c.verdict == "not compared" and c.as_dict()["p_value"] is None


class FakeBenchmark:
    """pytest-benchmark's fixture as the runner uses it: pedantic rounds with a teardown, each round
    lasting 1 ms (a virtual time: the rounds' real duration does not matter)."""

    def __init__(self):
        from pytest_benchmark.stats import Stats

        self.extra_info, self.has_error, self.calls = {}, False, 0
        self.stats = type("Metadata", (), {"stats": Stats()})()

    def pedantic(self, target, rounds, iterations, warmup_rounds, teardown=None):
        try:
            for _ in range(rounds):
                for _ in range(iterations):
                    target()
                self.stats.stats.update(1e-3)
                self.calls += 1
                if teardown:
                    teardown()
        except Exception:
            self.has_error = True
            raise


def _measure(max_call_s):
    from tests.fake_adapter import TIMED
    from xentcheck.bench import runner, sweep

    binding = TIMED.bindings()[0]
    spec = sweep.BenchSpec("timed", binding.name, "softmax_ce", 32, 10, "float32", "eager", "forward")
    problem = sweep.problem("softmax_ce", "index", "mean", 32, 10, "float32")
    floor = {"exp": {"float32": {"exp_per_s": 1e9}}, "bandwidth": {"bytes_per_s": 1e10}}
    bench = FakeBenchmark()
    rec = runner.measure(
        TIMED, binding, spec, problem, bench, floor=floor, budget_s=10.0, target=0.03, max_call_s=max_call_s, threads=1
    )
    return rec, bench


def test_the_runner_stops_at_the_target_and_records_the_interval():
    rec, bench = _measure(max_call_s=0)
    st = rec.stats
    assert bench.calls == st["rounds"] == 6 and not bench.has_error  # constant rounds: precise at once
    assert st["stopped"] == "precision" and st["ci_low_s"] == st["ci_high_s"] == st["median_s"] == 1e-3
    assert st["precision"] == 0 and st["precision_target"] == 0.03 and st["ci_level"] == 0.95


def test_a_call_over_the_limit_is_timed_once_and_says_so():
    rec, bench = _measure(max_call_s=1e-12)  # every real call takes longer
    st = rec.stats
    assert bench.calls == st["rounds"] == 1 and st["stopped"] == "max-call"
    assert st["ci_low_s"] is None and st["precision"] is None and rec.overhead is None
