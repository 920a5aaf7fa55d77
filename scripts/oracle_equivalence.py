"""Evaluate the oracle over every built-in case and many conventions, to show two versions of the code agree.

``dump OUT.pkl`` evaluates ``reference.evaluate`` for every built-in case x op x dtype x reduction under
every convention listed below (each binding mean convention, each registry entry's policies and the
merged policies of the entries that cover one binding, and each policy value alone) with the code on
``PYTHONPATH``; ``compare A.pkl B.pkl`` says whether two dumps are identical (``np.array_equal`` with
``equal_nan``; arrays over ``BIG`` elements are compared by a digest of their bytes, NaN made canonical);
``check A.pkl`` compares a dump with the code on ``PYTHONPATH`` as it evaluates (one dump in memory).
Run: ``cd CHECKOUT && PYTHONPATH=$PWD python scripts/oracle_equivalence.py dump OUT.pkl``.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import tomllib
from pathlib import Path

import numpy as np

from cases import load_catalog
from xentcheck import reference as R
from xentcheck.problem import DTYPES

BIG = 4096
#: keys of ``expect`` that are not oracle policies
NOT_POLICIES = {"compute_dtype", "result_dtype", "raises", "message", "invalid_targets"}
REDUCTION_POLICIES = {"mean_divisor_epsilon", "empty_mean_zero", "empty_reduced_is_empty"}
#: every policy value the oracle implements, each alone
SINGLES = [
    ("prob_clip", 1e-7),
    ("prob_clip", 1e-4),
    ("renormalize", "before_clip"),
    ("renormalize", "after_clip"),
    ("log_clamp", -100.0),
    ("log_epsilon", 1e-7),
    ("mean_divisor_epsilon", 1e-7),
    ("grad_denominator_floor", 1e-12),
    ("zero_times_inf", True),
    ("empty_mean_zero", True),
    ("empty_reduced_is_empty", True),
    ("labels_in_dtype", True),
    ("upcast_half", True),
    ("grad_unit_target_sum", True),
    ("inf_logit_nan", "row"),
    ("inf_logit_nan", "target_mass"),
    ("inf_logit_nan", "at_class"),
    ("sigmoid_formula", "max_shift"),
    ("sigmoid_formula", "linear"),
    ("sigmoid_formula", "products"),
    ("log_grad_in_dtype", True),
    ("smoothing_last_axis", True),
    ("ignored_row_nan_grad", True),
    ("where_excluded_target", "dropped"),
    ("where_excluded_target", "label_logit"),
    ("where_empty_row", "lse_minus_logit"),
    ("one_hot_products", True),
    ("probabilities_dtype", "input"),
    ("probabilities_dtype", "float32"),
    ("probabilities_dtype", "bfloat16"),
    ("exp_sum_in_dtype", True),
    ("one_hot_products", True, "zero_times_inf", True, "labels_in_dtype", True),
    ("prob_clip", 1e-7, "log_grad_in_dtype", True, "renormalize", "after_clip"),
    ("prob_clip", 1e-7, "log_epsilon", 1e-7, "zero_times_inf", True),
    ("prob_clip", 1e-7, "upcast_half", True, "grad_denominator_floor", 1e-12),
]


def conventions() -> list[dict]:
    """The conventions to evaluate under, as keyword dicts of ``Convention`` (deduplicated, in order)."""
    out = [{"mean_by": m, "mean_last_axis": last} for m in R.MEAN_BY for last in (False, True)]
    out += [dict(zip(s[::2], s[1::2], strict=True)) for s in SINGLES]
    entries = tomllib.loads(Path("suites/expectations.toml").read_text())["expectation"]
    policies = [{k: v for k, v in e["expect"].items() if k not in NOT_POLICIES} for e in entries]
    merged: dict[tuple, dict] = {}  # what Registry.find gives when every entry on a binding applies at once
    for e, pol in zip(entries, policies, strict=True):
        fws = [e["framework"]] if isinstance(e["framework"], str) else e["framework"]
        for fw in fws:
            for b in e["bindings"]:
                merged.setdefault((fw, b), {}).update(pol)
    for pol in [*policies, *merged.values()]:
        if pol:  # and under a mean over the non-ignored elements, where a policy changes the mean
            out += [pol, {"mean_by": "valid_count", **pol}] if set(pol) & REDUCTION_POLICIES else [pol]
    seen, unique = set(), []
    for c in out:
        key = tuple(sorted(c.items()))
        if key not in seen:
            seen.add(key)
            unique.append(c)
    return unique


def _canon(a) -> object:
    a = np.asarray(a, dtype=np.float64)
    if a.size <= BIG:
        return a.copy()
    b = np.where(np.isnan(a), np.nan, a)  # one NaN bit pattern
    return ("digest", a.shape, hashlib.sha256(np.ascontiguousarray(b).tobytes()).hexdigest())


def evaluations(convs: list[dict]):
    """(key, result) for every built-in problem under every convention: the arrays of the evaluation, or
    the error it raised."""
    for case in load_catalog():
        for op in case.ops:
            for dtype in DTYPES:
                for reduction in ("none", "sum", "mean"):
                    try:
                        problem = case.problem(op, dtype, reduction)
                    except Exception as e:  # noqa: BLE001 - recorded, compared like a result
                        yield (case.name, op, dtype, reduction), f"problem: {type(e).__name__}: {e}"
                        continue
                    for i, kw in enumerate(convs):
                        conv = R.Convention(**kw)
                        cot = None
                        if reduction == "none":
                            shape = R.output_shape(problem, conv)
                            cot = np.random.default_rng(len(shape) + i).uniform(-1.5, 1.5, size=shape)
                        try:
                            ev = R.evaluate(problem, conv, cot)
                            got = tuple(_canon(a) for a in (ev.value, ev.grad, *ev.value_scale, *ev.grad_scale))
                        except Exception as e:  # noqa: BLE001
                            got = f"{type(e).__name__}: {e}"
                        yield (case.name, op, dtype, reduction, i), got


def dump(path: str) -> None:
    convs = conventions()
    results = dict(evaluations(convs))
    with open(path, "wb") as f:
        pickle.dump({"conventions": convs, "results": results}, f)
    print(f"{len(results)} evaluations under {len(convs)} conventions -> {path}")


def check(path: str) -> int:
    """Compare a dump with the code on PYTHONPATH, evaluated now (one dump in memory, not two)."""
    a = pickle.loads(Path(path).read_bytes())
    convs = conventions()
    if a["conventions"] != convs:
        print("the dump used other conventions")
        return 1
    ra, seen, differ, arrays = a["results"], set(), [], 0
    for key, got in evaluations(convs):
        seen.add(key)
        arrays += isinstance(got, tuple)
        if key not in ra or not _equal(ra[key], got):
            differ.append(key)
    differ += [k for k in ra if k not in seen]
    print(
        f"{len(seen)} evaluations compared ({arrays} with arrays: value, gradient and their error scales; "
        f"{len(seen) - arrays} raised or had no problem, compared by message), {len(convs)} conventions: "
        f"{len(differ)} differ"
    )
    for k in differ[:20]:
        print("  differs:", k, convs[k[-1]] if len(k) == 5 else "")
    return 1 if differ else 0


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return a == b


def _equal(x, y) -> bool:
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y, strict=True))
    return x == y


def compare(a_path: str, b_path: str) -> int:
    a, b = (pickle.loads(Path(p).read_bytes()) for p in (a_path, b_path))
    if a["conventions"] != b["conventions"]:
        print("the two dumps used different conventions")
        return 1
    ra, rb = a["results"], b["results"]
    differ = [k for k in ra if k not in rb or not _equal(ra[k], rb[k])]
    differ += [k for k in rb if k not in ra]
    arrays = sum(1 for k in ra if isinstance(ra[k], tuple))
    print(
        f"{len(ra)} evaluations compared ({arrays} with arrays, {len(ra) - arrays} raised or had no problem), "
        f"{len(a['conventions'])} conventions: {len(differ)} differ"
    )
    for k in differ[:20]:
        print("  differs:", k, a["conventions"][k[-1]] if len(k) == 5 else "")
    return 1 if differ else 0


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    else:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
