"""The findings digest that opens the report: one card per behaviour, before any table.

A card is a registry entry that fired (every deviation it explains) or a group of failures (one
binding's value or gradient checks that fail or raise). Each names the frameworks and their versions,
the bindings, dtypes and checks, a worked example (what the mathematics says against what the binding
returned, taken from a record), the reason, the source and a repro snippet; cards are ordered by
severity: NaN or inf where the answer is finite, a wrong value, a wrong gradient, a documented
convention that differs.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict

from xentcheck.records import CheckRecord, Results

from .history import package_versions

SEVERITIES = ("NaN or inf where the answer is finite", "a wrong value", "a wrong gradient",
              "a documented convention that differs")
#: the comparator's example of a mismatch, in a record's reason
_EXAMPLE = re.compile(r"at \[([^\]]*)\]: got (\S+?), expected (\S+?) \(bound")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def example(r: CheckRecord) -> dict | None:
    """The first mismatch a record's reason quotes: where, what came back, what the mathematics says."""
    m = _EXAMPLE.search(r.reason)
    if m is None:
        return None
    got, exp = _number(m[2]), _number(m[3])
    return {"id": r.id, "case": r.case, "dtype": r.dtype, "check": r.check, "binding": r.binding, "at": m[1],
            "got": m[2], "expected": m[3], "nonfinite": not math.isfinite(got) and math.isfinite(exp)}


def findings(docs: list[Results]) -> list[dict]:
    """The cards, most severe first (then the most checks first)."""
    groups: dict[tuple, list[CheckRecord]] = defaultdict(list)
    for d in docs:
        for r in d.records:
            if r.outcome == "deviation" and r.expectation:
                groups[("entry", r.expectation)].append(r)
            elif r.outcome in ("fail", "error"):
                groups[("fail", r.framework, r.binding, r.check)].append(r)
    entries = {e["id"]: e for d in docs for e in d.expectations.get("entries", [])}
    cards = []
    for key, recs in groups.items():
        examples = [e for e in map(example, recs) if e]
        shown = next((e for e in examples if e["nonfinite"]), examples[0] if examples else None)
        if shown is not None and shown["nonfinite"]:
            severity = 0
        elif key[0] == "fail":
            severity = 2 if key[3] == "grad" else 1
        else:
            severity = 3
        frameworks = {r.framework for r in recs}
        parts = [entries[i] for i in key[1].split("+") if i in entries] if key[0] == "entry" else []
        first = next((r for r in recs if shown and r.id == shown["id"]), recs[0])
        repro = first.repro or next((r.repro for r in recs if r.repro), None)
        cards.append({
            "severity": severity, "severity_text": SEVERITIES[severity],
            "title": key[1] if key[0] == "entry" else f"{key[2]}: {key[3]} checks fail",
            "kind": "documented deviation" if key[0] == "entry" else "failure",
            "frameworks": sorted(frameworks),
            "versions": sorted({f"{k} {v}" for d in docs for k, v in package_versions(d, frameworks).items()}),
            "bindings": sorted({r.binding for r in recs}), "dtypes": sorted({r.dtype for r in recs}),
            "checks": sorted({r.check for r in recs}), "count": len(recs), "example": shown,
            "reason": "; ".join(p["reason"] for p in parts) if parts else first.reason,
            "sources": [p["source"] for p in parts], "repro": repro,
            # upstream status: the issue and its state, or what was searched (registry field tracker)
            "trackers": [f'{p["id"]}: {p["tracker"]}' for p in parts if p.get("tracker")],
        })
    return sorted(cards, key=lambda c: (c["severity"], -c["count"], c["title"]))
