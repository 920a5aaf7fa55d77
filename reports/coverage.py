"""The coverage matrix: binding x case category x dtype x mode, from results records only.

Each cell is what the run did there: the worst outcome of the checks it executed, or ``ruled out``
with the reasons the binding's capabilities gave, or a gap: a mode this run did not request, or no
case of that category in that dtype for the binding's op. Gaps are listed, so an empty cell is never
silent.
"""

from __future__ import annotations

from collections import defaultdict

from xentcheck.problem import DTYPES as DTYPE_ORDER
from xentcheck.records import InteractionCoverage, Results

SHORT = {"float16": "16", "bfloat16": "b16", "float32": "32", "float64": "64"}
_WORST = ("fail", "error", "deviation", "pass")


def coverage_view(docs: list[Results]) -> dict:
    """Rows per binding, one table per mode, and the list of gaps."""
    records = [r for d in docs for r in d.records]
    bindings: dict = {}
    for d in docs:
        bindings.update(d.environment.get("bindings", {}))
    modes_run = sorted({r.mode for r in records})
    modes = sorted(
        set(modes_run) | {m for b in bindings.values() for m in b["capabilities"]["modes"]},
        key=lambda m: (m != "eager", m),
    )
    categories = sorted({r.category for r in records if r.category})
    dtypes = [
        t
        for t in DTYPE_ORDER
        if any(r.dtype == t for r in records) or any(t in b["capabilities"]["dtypes"] for b in bindings.values())
    ]
    ops_of = defaultdict(set)  # category -> the ops its cases are declared for
    for r in records:
        ops_of[r.category].add(r.op)
    seen: dict = defaultdict(lambda: {"counts": defaultdict(int), "why": set()})
    for r in records:
        cell = seen[(r.framework, r.binding, r.category, r.mode, r.dtype)]
        cell["counts"][r.outcome] += 1
        if r.outcome == "unsupported":
            cell["why"].add(r.reason)
    tables, gaps, ruled_out = [], [], 0
    keys = sorted(bindings) or sorted({f"{r.framework}::{r.binding}" for r in records})
    for mode in modes:
        rows = []
        for key in keys:
            fw, _, name = key.partition("::")
            caps = bindings.get(key, {}).get("capabilities", {})
            row = {"framework": fw, "binding": name, "cells": {}}
            for cat in categories:
                marks = []
                for dt in dtypes:
                    mark = _mark(seen.get((fw, name, cat, mode, dt)), caps, mode, dt, mode in modes_run, ops_of[cat])
                    ruled_out += mark["status"] == "ruled out"
                    if mark["status"] in ("not run", "no case"):
                        gaps.append(
                            {
                                "framework": fw,
                                "binding": name,
                                "category": cat,
                                "mode": mode,
                                "dtype": dt,
                                "why": mark["why"],
                            }
                        )
                    marks.append({**mark, "dtype": SHORT[dt]})
                row["cells"][cat] = marks
            rows.append(row)
        tables.append({"mode": mode, "rows": rows, "run": mode in modes_run})
    return {
        "tables": tables,
        "categories": categories,
        "dtypes": [SHORT[t] for t in dtypes],
        "gaps": gaps,
        "ruled_out": ruled_out,
        "modes_run": modes_run,
    }


def _mark(cell: dict | None, caps: dict, mode: str, dtype: str, mode_ran: bool, category_ops: set) -> dict:
    if cell is not None:
        counts = cell["counts"]
        worst = next((o for o in _WORST if counts.get(o)), None)
        if worst is not None:
            detail = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
            return {"status": worst, "why": detail}
        return {"status": "ruled out", "why": "; ".join(sorted(cell["why"]))}
    if caps and caps.get("op") not in category_ops:
        return {
            "status": "ruled out",
            "why": f"the category does not apply to {caps.get('op')} "
            f"(its cases are for {', '.join(sorted(o for o in category_ops if o))})",
        }
    if caps and mode not in caps.get("modes", []):
        return {"status": "ruled out", "why": f"mode {mode} not supported"}
    if caps and dtype not in caps.get("dtypes", []):
        return {"status": "ruled out", "why": f"dtype {dtype} not supported"}
    if not mode_ran:
        return {"status": "not run", "why": f"this run did not request mode {mode} (pytest --modes=eager,{mode})"}
    return {
        "status": "no case",
        "why": f"no case of this category for {caps.get('op', 'this op')} declares {dtype}, "
        f"or this run left it out (pytest --all-dtypes runs every case in every dtype)",
    }


def interactions_view(docs: list[Results]) -> list[dict]:
    """Per binding and per strength its interaction cases guarantee (``environment.interactions``,
    read as :class:`~xentcheck.records.InteractionCoverage`): which factors meet that many at a time,
    how many combinations exist, how many are covered, ruled out (with the reason) and missing (a
    visible gap), with the outcomes of the binding's interaction checks."""
    outcomes: dict = defaultdict(lambda: defaultdict(int))
    for d in docs:
        for r in d.records:
            if r.category == "interactions":
                outcomes[(r.framework, r.binding)][r.outcome] += 1
    rows = []
    for d in docs:
        for key, raw in sorted(d.environment.get("interactions", {}).items()):
            fw, _, binding = key.partition("::")
            cov = InteractionCoverage.from_json(raw)
            strengths = [c.to_json() for c in cov.by_strength]
            rows.append(
                {
                    "framework": fw,
                    "binding": binding,
                    "run_strength": cov.strength,
                    "cases": cov.cases,
                    "by_strength": strengths,
                    "outcomes": dict(sorted(outcomes[(fw, binding)].items())),
                }
            )
    return rows
