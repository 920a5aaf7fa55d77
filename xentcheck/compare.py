"""The comparator: one binding output against one oracle value, element by element.

Non-finite reference values are exact expectations: NaN must be NaN, +inf must be +inf, -inf must be
-inf; a finite reference needs a finite result within the bound. +0 and -0 compare equal (no loss or
gradient in these ops gives the sign of zero a meaning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .records import Errors


@dataclass(frozen=True)
class Comparison:
    """Whether ``got`` matches ``expected`` and the measured errors over elements finite in both."""

    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    tol_units: float = 0.0  # largest |error| / bound: <= 1 passes
    eps_units: float = 0.0  # largest |error| / (eps * A): the error in units of the dtype's eps, scaled by conditioning
    mismatches: int = 0
    detail: str = ""
    examples: list[str] = field(default_factory=list)
    #: the worst mismatched elements (a non-finite number on either side first, then the largest error in
    #: bound units; with no mismatch, the largest errors within the bound), each {"at", "expected", "got",
    #: "bound"}: the numbers behind the verdict
    worst: tuple[dict, ...] = ()

    def errors(self) -> Errors:
        """The measured errors as a results record holds them (strict JSON: inf becomes the float64 max)."""
        big = float(np.finfo(np.float64).max)

        def finite(v: float) -> float:
            return v if np.isfinite(v) else big

        return Errors(
            max_abs=finite(self.max_abs),
            max_rel=finite(self.max_rel),
            tol_units=finite(self.tol_units),
            eps_units=finite(self.eps_units),
            mismatches=self.mismatches,
        )


def _fmt(v: float) -> str:
    return repr(float(v))


def json_number(v: float) -> float | str:
    """A float for strict JSON: finite as is, else "nan", "inf" or "-inf"."""
    v = float(v)
    return v if np.isfinite(v) else ("nan" if np.isnan(v) else ("inf" if v > 0 else "-inf"))


def _bound_text(expected: float, bnd: float) -> str:
    if not np.isfinite(expected):
        return "exact: a non-finite expected value must be matched"
    if not np.isfinite(bnd):
        return f"bound {bnd:.3g}: the problem's scale is not finite, so only a finite answer is required"
    return f"bound {bnd:.3g}"


#: how many of the worst elements a comparison keeps
WORST = 3


def compare(got, expected, bound, scale_a=None, eps: float | None = None) -> Comparison:
    """Compare arrays ``got`` and ``expected`` given the per-element absolute ``bound``."""
    got = np.asarray(got, dtype=np.float64)
    exp = np.asarray(expected, dtype=np.float64)
    if got.shape != exp.shape:
        return Comparison(False, mismatches=max(exp.size, 1), detail=f"shape {got.shape} != expected {exp.shape}")
    bnd = np.broadcast_to(np.asarray(bound, dtype=np.float64), exp.shape)
    with np.errstate(all="ignore"):
        nan_exp = np.isnan(exp)
        inf_exp = np.isinf(exp)
        fin_exp = ~(nan_exp | inf_exp)
        bad = np.zeros(exp.shape, dtype=bool)
        bad |= nan_exp & ~np.isnan(got)
        bad |= inf_exp & (got != exp)
        bad |= fin_exp & ~np.isfinite(got)
        both = fin_exp & np.isfinite(got)
        err = np.where(both, np.abs(got - exp), 0.0)
        units = np.where(both, np.where(bnd > 0, err / bnd, np.where(err > 0, np.inf, 0.0)), 0.0)
        bad |= both & (err > bnd)
        rel = np.where(both & (exp != 0), err / np.abs(exp), 0.0)
        eps_u = 0.0
        if scale_a is not None and eps:
            a = np.broadcast_to(np.asarray(scale_a, dtype=np.float64), exp.shape)
            e = np.where(both & (a > 0), err / (eps * a), 0.0)
            eps_u = float(np.max(e, initial=0.0))
    n_bad = int(np.count_nonzero(bad))
    examples = []
    for idx in np.argwhere(bad)[:3]:
        i = tuple(int(k) for k in idx)
        examples.append(f"at {list(i)}: got {_fmt(got[i])}, expected {_fmt(exp[i])} ({_bound_text(exp[i], bnd[i])})")
    worst = []
    if exp.size:
        flat_units = np.asarray(units, dtype=np.float64).reshape(-1)
        if n_bad:  # the mismatched elements: a non-finite number on either side first, then the largest error
            cand = np.flatnonzero(bad)
            special = (~np.isfinite(got) | ~fin_exp).reshape(-1)[cand]
            cand = cand[np.lexsort((-flat_units[cand], ~special))[:WORST]]
        else:  # none (a documented dtype, say): the largest errors within the bound (cheap: no full sort)
            k = min(WORST, flat_units.size)
            cand = np.argpartition(-flat_units, k - 1)[:k] if flat_units.size > k else np.arange(flat_units.size)
            cand = cand[np.argsort(-flat_units[cand], kind="stable")]
        for c in cand:
            i = tuple(int(j) for j in np.unravel_index(int(c), exp.shape))
            worst.append(
                {
                    "at": list(i),
                    "expected": json_number(exp[i]),
                    "got": json_number(got[i]),
                    "bound": float(bnd[i]) if np.isfinite(exp[i]) and np.isfinite(bnd[i]) else None,
                }
            )
    detail = "" if n_bad == 0 else f"{n_bad} of {exp.size} elements differ; " + "; ".join(examples)
    return Comparison(
        ok=n_bad == 0,
        max_abs=float(np.max(err, initial=0.0)),
        max_rel=float(np.max(rel, initial=0.0)),
        tol_units=float(np.max(units, initial=0.0)),
        eps_units=eps_u,
        mismatches=n_bad,
        detail=detail,
        examples=examples,
        worst=tuple(worst),
    )
