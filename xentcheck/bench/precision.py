"""How precisely a benchmark's median is known, and when to stop timing it.

The interval is the distribution-free (order-statistic) confidence interval of the median, from
``scipy.stats.quantile_test``: it assumes nothing about the shape of timing noise, which is skewed.
At 95% it needs at least 6 rounds (1 - 2 * 0.5**6 > 0.95), so no benchmark is timed in fewer.

A benchmark is timed round after round until the interval's half-width, relative to the median, is
within the target precision, or its time budget is spent (at least :data:`MIN_ROUNDS` rounds), or it
reaches :data:`MAX_ROUNDS`; the record says which (``stopped``) and what precision was reached. A
configuration whose first round is slower than the sweep's limit per call is timed in that round
alone (``max-call``), without an interval.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence

LEVEL = 0.95
#: the fewest rounds with a 95% distribution-free interval of the median
MIN_ROUNDS = 6
MAX_ROUNDS = 200
#: default target: the 95% interval within +-3% of the median
PRECISION = 0.03


def scipy_stats():
    """scipy.stats, loaded when first needed (its import takes a second or more)."""
    from scipy import stats

    return stats


def median_ci(samples: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """The distribution-free ``level`` confidence interval of the median of ``samples``; None when
    there are too few samples for one."""
    if len(samples) < 2:
        return None
    ci = scipy_stats().quantile_test(list(samples), q=statistics.median(samples), p=0.5).confidence_interval(level)
    low, high = float(ci.low), float(ci.high)
    if math.isnan(low) or math.isnan(high):
        return None
    return low, high


def relative_half_width(samples: Sequence[float], ci: tuple[float, float] | None) -> float | None:
    """The larger distance from the median to an end of ``ci``, over the median."""
    if ci is None:
        return None
    m = statistics.median(samples)
    return max(m - ci[0], ci[1] - m) / m if m > 0 else math.inf


def summary(samples: Sequence[float], target: float, stopped: str) -> dict:
    """The interval fields of a record's ``stats``."""
    ci = median_ci(samples)
    return {
        "ci_level": LEVEL,
        "ci_low_s": ci[0] if ci else None,
        "ci_high_s": ci[1] if ci else None,
        "precision": relative_half_width(samples, ci),
        "precision_target": target,
        "stopped": stopped,
    }


class Enough(Exception):
    """Raised between rounds to end the timing loop (caught by the runner)."""


class Stopper:
    """Decides after each round whether to time another one.

    A first round longer than ``max_call_s`` (when not 0) is the only one.

    :meth:`should_stop` reads the round times so far (per call); the interval is recomputed only at
    geometrically spaced round counts (x1.25), so deciding costs little even for millisecond rounds.
    ``budget_s`` is the timed-rounds time after which a benchmark stops short of its target."""

    def __init__(
        self,
        target: float,
        budget_s: float,
        *,
        max_call_s: float = 0.0,
        min_rounds: int = MIN_ROUNDS,
        max_rounds: int = MAX_ROUNDS,
        clock=time.perf_counter,
    ) -> None:
        self.target, self.budget_s, self.max_call_s = target, budget_s, max_call_s
        self.min_rounds, self.max_rounds = min_rounds, max_rounds
        self.clock = clock
        self.started = clock()
        self.next_check = min_rounds
        self.stopped = "rounds"

    def should_stop(self, samples: Sequence[float]) -> bool:
        n = len(samples)
        if n == 1 and self.max_call_s and samples[0] > self.max_call_s:
            self.stopped = "max-call"  # one round of a call this slow is all the sweep can afford
            return True
        if n < self.min_rounds:
            return False
        if n >= self.next_check:
            self.next_check = max(n + 1, math.ceil(n * 1.25))
            precision = relative_half_width(samples, median_ci(samples))
            if precision is not None and precision <= self.target:
                self.stopped = "precision"
                return True
        if self.clock() - self.started >= self.budget_s:
            return self._stop("time", samples)
        if n >= self.max_rounds:
            return self._stop("rounds", samples)
        return False

    def _stop(self, why: str, samples: Sequence[float]) -> bool:
        """Stop for ``why``, unless the target was met since the last look (then say so)."""
        precision = relative_half_width(samples, median_ci(samples))
        self.stopped = "precision" if precision is not None and precision <= self.target else why
        return True
