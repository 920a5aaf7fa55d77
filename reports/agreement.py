"""Agreement across frameworks: which bindings of one op give different answers to the same input.

A diagnostic (the verdicts come from the oracle), computed from the stability sweep: every binding
of an op sees the same points in a dtype, so two bindings can be compared point by point. Two
results agree when both are within the tolerance of the exact value (then they are within two
bounds of each other), or when both miss it in the same way (the same inf or NaN, or the same
finite number to 1e-6). The matrix counts the points where they do not, loss and gradient together.
"""

from __future__ import annotations

import math
from collections import defaultdict

from xentcheck.records import Results, StabilityPoint


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def _agree(p: StabilityPoint, q: StabilityPoint, check: str) -> bool | None:
    key = f"{check}_status"
    sp, sq = getattr(p, key), getattr(q, key)
    if sp is None or sq is None:
        return None
    if sp == sq == "ok":
        return True
    if check == "value":  # the losses are in the records: compare the numbers
        return _same(p.value, q.value)
    # gradients: only their errors are recorded; the same miss (inf, NaN, the same documented
    # behaviour, or the same error) counts as agreement
    return sp == sq and _same(p.grad_units, q.grad_units)


def agreement(docs: list[Results]) -> list[dict]:
    """Per op: the bindings (rows and columns) and, per pair, the disagreeing points out of those compared."""
    by_op: dict = defaultdict(dict)
    for d in docs:
        for r in d.stability:
            if r.outcome == "ok":
                label = f"{r.run or r.framework}: {r.binding}"
                by_op[r.op].setdefault(label, {})[(r.axis, r.dtype)] = {p.x: p for p in r.points}
    out = []
    for op, sweeps in sorted(by_op.items()):
        names = sorted(sweeps)
        cells = {}
        for a in names:
            for b in names:
                diff = total = 0
                for key in sweeps[a].keys() & sweeps[b].keys():
                    pa, pb = sweeps[a][key], sweeps[b][key]
                    for x in pa.keys() & pb.keys():
                        for check in ("value", "grad"):
                            same = _agree(pa[x], pb[x], check)
                            if same is not None:
                                total += 1
                                diff += not same
                cells[(a, b)] = {"differ": diff, "compared": total, "share": diff / total if total else math.nan}
        out.append(
            {
                "op": op,
                "bindings": names,
                "rows": [{"binding": a, "cells": [cells[(a, b)] for b in names]} for a in names],
            }
        )
    return out
