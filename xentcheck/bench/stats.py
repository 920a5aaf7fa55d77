"""Run-vs-run comparison of benchmark timings.

A change is flagged only when it is both statistically significant and larger than a minimum
effect. Significance: a two-sided Mann-Whitney U test per benchmark on the raw round times (no
normality assumed; timing noise is skewed), with the Benjamini-Hochberg procedure across all
compared benchmarks so that many benchmarks do not make false alarms likely. Effect: the ratio of
medians, new over old. Precision: the two medians' 95% intervals (:mod:`.precision`) must not
overlap, so a change is never claimed that the runs' own precision cannot resolve. A benchmark timed
in fewer than 6 rounds in either run (``--bench-max-call``) has no interval and is not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..records import BenchRecord
from . import precision

#: identifying fields of a benchmark record (what must match to compare two timings)
KEY_FIELDS = ("framework", "binding", "mode", "dtype", "pass_", "batch", "classes", "device")
ALPHA = 0.05
MIN_EFFECT = 0.10


@dataclass(frozen=True)
class Change:
    """The comparison of one benchmark between two runs."""

    key: tuple
    old_median_s: float
    new_median_s: float
    ratio: float
    p_value: float
    p_adjusted: float
    verdict: str  # "slower", "faster", "unchanged" or "not compared" (too few rounds for an interval)

    @property
    def name(self) -> str:
        return " ".join(str(k) for k in self.key)

    def as_dict(self) -> dict:
        return {
            "key": {f.rstrip("_"): k for f, k in zip(KEY_FIELDS, self.key, strict=True)},
            "old_median_s": self.old_median_s,
            "new_median_s": self.new_median_s,
            "ratio": self.ratio,
            "p_value": None if math.isnan(self.p_value) else self.p_value,
            "p_adjusted": None if math.isnan(self.p_adjusted) else self.p_adjusted,
            "verdict": self.verdict,
        }


def key_of(rec: BenchRecord) -> tuple:
    return tuple(getattr(rec, f) for f in KEY_FIELDS)


def compare(
    old: list[BenchRecord], new: list[BenchRecord], *, alpha: float = ALPHA, min_effect: float = MIN_EFFECT
) -> list[Change]:
    """Compare the timed records present in both runs (records without samples are ignored)."""
    olds = {key_of(r): r for r in old if r.samples}
    out, pairs = [], []
    for b in new:
        a = olds.get(key_of(b)) if b.samples else None
        if a is None:
            continue
        ma, mb = float(np.median(a.samples)), float(np.median(b.samples))
        ratio = mb / ma if ma > 0 else math.inf
        if min(len(a.samples), len(b.samples)) < precision.MIN_ROUNDS:  # no interval: nothing to claim
            out.append(Change(key_of(b), ma, mb, ratio, math.nan, math.nan, "not compared"))
        else:
            pairs.append((a, b, ma, mb, ratio))
    if not pairs:
        return out
    pvals = []
    for a, b, *_ in pairs:
        xa, xb = np.asarray(a.samples), np.asarray(b.samples)
        if np.ptp(np.concatenate([xa, xb])) == 0:
            pvals.append(1.0)  # identical constant samples: no evidence of a change
        else:
            pvals.append(float(precision.scipy_stats().mannwhitneyu(xa, xb, alternative="two-sided").pvalue))
    stats = precision.scipy_stats()
    padj = stats.false_discovery_control(pvals, method="bh") if len(pvals) > 1 else np.asarray(pvals)
    bound = math.log1p(min_effect)
    for (a, b, ma, mb, ratio), p, q in zip(pairs, pvals, padj, strict=True):
        verdict = "unchanged"
        if q < alpha and ratio > 0 and abs(math.log(ratio)) > bound and _disjoint(a.samples, b.samples):
            verdict = "slower" if ratio > 1 else "faster"
        out.append(Change(key_of(b), ma, mb, ratio, p, float(q), verdict))
    return out


def _disjoint(old: list[float], new: list[float]) -> bool:
    """Whether the two medians' 95% intervals do not overlap."""
    a, b = precision.median_ci(old), precision.median_ci(new)
    return a is not None and b is not None and (a[1] < b[0] or b[1] < a[0])
