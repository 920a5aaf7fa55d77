"""The error-input table: what each binding does with each invalid input, from results records only.

A cell names the exception the binding raised (its class, where it was raised) or says it returned a
value, with the check's outcome: a reader sees at a glance which APIs validate their input and how.
"""

from __future__ import annotations

from xentcheck.records import Results

CATEGORY = "invalid targets"


def error_table(docs: list[Results]) -> dict:
    """``{"cases": [...], "rows": [{"framework", "binding", "cells": {case: cell}}]}``; a cell is
    ``{"text", "outcome", "title"}``."""
    cases: list[str] = []
    rows: dict[tuple[str, str], dict] = {}
    for d in docs:
        for r in d.records:
            if r.category != CATEGORY or r.outcome == "unsupported":
                continue
            if r.case not in cases:
                cases.append(r.case)
            row = rows.setdefault(
                (r.framework, r.binding), {"framework": r.framework, "binding": r.binding, "cells": {}}
            )
            text = r.raised["type"] if r.raised else "returns"
            old = row["cells"].get(r.case)
            if old is None or (old["outcome"] == "pass" and r.outcome != "pass"):  # the worst of its checks
                row["cells"][r.case] = {"text": text, "outcome": r.outcome, "title": f"{r.outcome}: {r.reason}"[:400]}
    return {"cases": cases, "rows": [rows[k] for k in sorted(rows)]}
