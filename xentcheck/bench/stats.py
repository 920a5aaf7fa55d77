"""Run-vs-run comparison of benchmark timings.

A change is flagged only when it is both statistically significant and larger than a minimum
effect. Significance: a two-sided Mann-Whitney U test per benchmark on the raw round times (no
normality assumed; timing noise is skewed), with the Benjamini-Hochberg procedure across all
compared benchmarks so that many benchmarks do not make false alarms likely. Effect: the ratio of
medians, new over old.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..records import BenchRecord


def _sps():
    """scipy.stats, loaded when a comparison needs it (its import takes a second or more)."""
    from scipy import stats

    return stats

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
    verdict: str  # "slower", "faster" or "unchanged"

    @property
    def name(self) -> str:
        return " ".join(str(k) for k in self.key)

    def as_dict(self) -> dict:
        return {"key": {f.rstrip("_"): k for f, k in zip(KEY_FIELDS, self.key, strict=True)},
                "old_median_s": self.old_median_s, "new_median_s": self.new_median_s, "ratio": self.ratio,
                "p_value": self.p_value,
                "p_adjusted": self.p_adjusted, "verdict": self.verdict}


def key_of(rec: BenchRecord) -> tuple:
    return tuple(getattr(rec, f) for f in KEY_FIELDS)


def compare(old: list[BenchRecord], new: list[BenchRecord], *, alpha: float = ALPHA,
            min_effect: float = MIN_EFFECT) -> list[Change]:
    """Compare the timed records present in both runs (records without samples are ignored)."""
    olds = {key_of(r): r for r in old if r.samples}
    pairs = [(olds[key_of(r)], r) for r in new if r.samples and key_of(r) in olds]
    if not pairs:
        return []
    pvals = []
    for a, b in pairs:
        xa, xb = np.asarray(a.samples), np.asarray(b.samples)
        if np.ptp(np.concatenate([xa, xb])) == 0:
            pvals.append(1.0)  # identical constant samples: no evidence of a change
        else:
            pvals.append(float(_sps().mannwhitneyu(xa, xb, alternative="two-sided").pvalue))
    padj = _sps().false_discovery_control(pvals, method="bh") if len(pvals) > 1 else np.asarray(pvals)
    out = []
    bound = math.log1p(min_effect)
    for (a, b), p, q in zip(pairs, pvals, padj, strict=True):
        ma, mb = float(np.median(a.samples)), float(np.median(b.samples))
        ratio = mb / ma if ma > 0 else math.inf
        verdict = "unchanged"
        if q < alpha and ratio > 0 and abs(math.log(ratio)) > bound:
            verdict = "slower" if ratio > 1 else "faster"
        out.append(Change(key_of(b), ma, mb, ratio, p, float(q), verdict))
    return out
