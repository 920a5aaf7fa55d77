"""The findings digest that opens the report: one overview matrix, then one card per behaviour.

A card is one registry entry that fired (every deviation it explains, alone or together with other
entries: a check two entries cover counts on both cards, and each card leads with its own entry's
reason) or a group of failures (one binding's value or gradient checks that fail, or that raise).
Each names the frameworks and their versions, the bindings, dtypes and checks, a worked example
(what the mathematics says against what the binding returned, taken from a record the entry covers
alone where there is one), the reason, the source and a repro snippet.

Cards are sorted by kind: NaN or inf where the answer is finite, a wrong value, a wrong gradient, a
documented convention that differs, raises on valid input. The overview counts the cards per binding
family (a framework's API family, e.g. ``torch.nn.functional``) and kind.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict

from xentcheck.records import CheckRecord, Results

from .history import package_versions

#: the kinds of finding, the overview's columns, in the order cards are sorted
KINDS = (
    "NaN or inf where the answer is finite",
    "a wrong value",
    "a wrong gradient",
    "a documented convention that differs",
    "raises on valid input",
)
KIND_TITLES = (
    "NaN or inf where the answer is finite",
    "A wrong value",
    "A wrong gradient",
    "A documented convention that differs",
    "Raises on valid input",
)
KIND_SHORT = ("NaN / inf", "wrong value", "wrong gradient", "documented convention", "raises")
NONFINITE, VALUE, GRAD, CONVENTION, RAISES = range(5)
#: kept for readers of the old name
SEVERITIES = KINDS
#: the comparator's example of a mismatch, in a record's reason
_EXAMPLE = re.compile(r"at \[([^\]]*)\]: got (\S+?), expected (\S+?) \((?:bound|exact)")


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def family(framework: str, binding: str) -> str:
    """The binding family a binding belongs to: its framework and API family (the overview's rows)."""
    parts = binding.split(".")
    head = parts[0]
    if head == "keras":
        api = f"keras.{parts[1]}" if parts[1:2] in (["metrics"], ["ops"], ["Model"]) else "keras.losses"
    elif head == "tf":
        api = "tf.compat.v1.losses" if parts[1:2] == ["compat"] else ".".join(parts[:2])
    elif head == "F":
        api = "torch.nn.functional"
    elif head == "nn":
        api = "torch.nn"
    elif head in ("optax", "sklearn"):
        api = head
    elif head == "jax":
        api = "jax.nn"
    elif framework == "numpy":
        api = "numpy/scipy"
    else:
        api = head
    return f"{framework}: {api}"


def example(r: CheckRecord) -> dict | None:
    """The first mismatch a record's reason quotes: where, what came back, what the mathematics says."""
    m = _EXAMPLE.search(r.reason)
    if m is None:
        return None
    got, exp = _number(m[2]), _number(m[3])
    return {
        "id": r.id,
        "case": r.case,
        "dtype": r.dtype,
        "check": r.check,
        "binding": r.binding,
        "at": m[1],
        "got": m[2],
        "expected": m[3],
        "nonfinite": not math.isfinite(got) and math.isfinite(exp),
    }


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def findings(docs: list[Results]) -> list[dict]:
    """The cards, sorted by kind (then the most checks first)."""
    groups: dict[tuple, list[CheckRecord]] = defaultdict(list)
    for d in docs:
        for r in d.records:
            if r.outcome == "deviation" and r.expectation:
                for entry in r.expectation.split("+"):  # one card per entry, never per combination
                    groups[("entry", entry)].append(r)
            elif r.outcome in ("fail", "error"):
                groups[("fail", r.framework, r.binding, r.check, r.outcome)].append(r)
    entries = {e["id"]: e for d in docs for e in d.expectations.get("entries", [])}
    cards = []
    for key, recs in groups.items():
        if key[0] == "entry":
            entry = entries.get(key[1], {})
            alone = [r for r in recs if r.expectation == key[1]]  # its own behaviour, without another entry's
            shown_from = alone or recs
        else:
            entry, shown_from = {}, recs
        examples = [e for e in map(example, shown_from) if e]
        shown = next((e for e in examples if e["nonfinite"]), examples[0] if examples else None)
        if key[0] == "entry" and "raises" in entry.get("expect", {}):
            kind = RAISES
        elif shown is not None and shown["nonfinite"]:
            kind = NONFINITE
        elif key[0] == "entry":
            kind = CONVENTION
        elif key[4] == "error":
            kind = RAISES
        else:
            kind = GRAD if key[3] == "grad" else VALUE
        frameworks = {r.framework for r in recs}
        first = next((r for r in recs if shown and r.id == shown["id"]), shown_from[0])
        repro = (
            first.repro
            or next((r.repro for r in shown_from if r.repro), None)
            or next((r.repro for r in recs if r.repro), None)
        )
        together = (
            sorted({i for r in recs for i in (r.expectation or "").split("+")} - {key[1], ""})
            if key[0] == "entry"
            else []
        )
        if key[0] == "entry":
            title, reason = key[1], entry.get("reason", first.reason)
        else:
            what = "raise" if key[4] == "error" else "fail"
            title, reason = f"{key[2]} ({key[1]}): {key[3]} checks {what}", first.reason
        cards.append(
            {
                "id": "card-" + _slug(title),
                "kind": kind,
                "kind_text": KINDS[kind],
                "kind_title": KIND_TITLES[kind],
                "severity": kind,
                "severity_text": KINDS[kind],  # the old names
                "title": title,
                "documented": key[0] == "entry",
                "frameworks": sorted(frameworks),
                "families": sorted({family(r.framework, r.binding) for r in recs}),
                "versions": sorted({f"{k} {v}" for d in docs for k, v in package_versions(d, frameworks).items()}),
                "bindings": sorted({r.binding for r in recs}),
                "dtypes": sorted({r.dtype for r in recs}),
                "checks": sorted({r.check for r in recs}),
                "count": len(recs),
                "example": shown,
                "reason": reason,
                "sources": [entry["source"]] if entry.get("source") else [],
                "repro": repro,
                "together": together,
                "check_id": first.id,
                # upstream status: the issue and its state, or what was searched (registry field tracker)
                "trackers": [f"{key[1]}: {entry['tracker']}"] if entry.get("tracker") else [],
            }
        )
    return sorted(cards, key=lambda c: (c["kind"], c["documented"], -c["count"], c["title"]))


def overview(cards: list[dict]) -> dict:
    """The first screen's matrix: binding families down, kinds of finding across, each cell the cards
    (their ids) that affect that family in that kind, and whether any of them is an undocumented failure."""
    cells: dict = defaultdict(lambda: {"cards": [], "failing": False, "checks": 0})
    for c in cards:
        for fam in c["families"]:
            cell = cells[(fam, c["kind"])]
            cell["cards"].append(c["id"])
            cell["failing"] |= not c["documented"]
            cell["checks"] += c["count"]
    failing = {f for (f, _), cell in cells.items() if cell["failing"]}
    families = sorted({f for f, _ in cells}, key=lambda f: (f not in failing, f))
    rows = [
        {
            "family": f,
            "slug": _slug(f),
            "cells": [dict(cells[(f, k)]) if (f, k) in cells else None for k in range(len(KINDS))],
        }
        for f in families
    ]
    return {"kinds": KIND_SHORT, "kinds_long": KINDS, "rows": rows}
