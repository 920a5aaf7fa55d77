"""The HTML report writer: results documents in, one self-contained HTML page out.

The page is rendered by a Jinja2 template with autoescaping (every string from a results file is
escaped) and inline CSS, so it opens offline from disk. This module only reshapes results records
into the tables the template shows.

The first screen (the verdict, the overview matrix and the findings cards) is plain HTML. Every
section below it is rendered the same way, then stored gzip-compressed and base64-encoded in a
``<div class="lazy" data-gz=...>`` that the page's script unpacks in the browser after the first
screen is drawn (a coverage table: when its mode is opened), so the page stays small with nothing
left out; :func:`expand` gives the page with every section unpacked, for tools and tests.
"""

from __future__ import annotations

import base64
import gzip
import re
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import jinja2
from markupsafe import Markup

from xentcheck.records import CheckRecord, FuzzSection, Results

from .agreement import agreement
from .charts import library, speed_charts, stability_charts
from .coverage import coverage_view, interactions_view
from .errors import error_table
from .findings import findings, overview
from .history import changes, run_labels, trends
from .speed import speed_view

TEMPLATES = Path(__file__).with_name("templates")

OUTCOME_ORDER = ("fail", "error", "deviation", "pass", "unsupported")


def safe_url(value: object) -> bool:
    """Whether a string from a results file may become a link: http(s) only. A results file is
    untrusted input; anything else (``javascript:``, ``data:``) is shown as text."""
    return (
        isinstance(value, str)
        and value.lower().startswith(("https://", "http://"))
        and not any(c in value for c in "\"'<> \t\n")
    )


def pack(text: str) -> str:
    """``text`` gzip-compressed (no timestamp: the same report gives the same bytes) and base64-encoded."""
    return base64.b64encode(gzip.compress(str(text).encode(), compresslevel=9, mtime=0)).decode("ascii")


def lazy(html: str, when: str = "") -> Markup:
    """A rendered section as a placeholder the page's script unpacks (``when="open"``: when the
    ``<details>`` around it is opened; else right after the first screen). Blank sections vanish."""
    if not str(html).strip():
        return Markup("")
    attr = f' data-when="{when}"' if when else ""
    return Markup(f'<div class="lazy"{attr} data-gz="{pack(html)}"></div>')


_LAZY = re.compile(r'<div class="lazy"(?: data-when="[a-z]+")? data-gz="([A-Za-z0-9+/=]*)"></div>')


def expand(page: str) -> str:
    """The report page with every compressed section unpacked in place: the HTML the browser shows."""
    return _LAZY.sub(lambda m: gzip.decompress(base64.b64decode(m[1])).decode(), page)


def verdict(totals: dict, cards: list[dict], stale: list[str], docs: list[Results]) -> dict:
    """The report's first line: the outcome of the run in words."""
    failing = totals.get("fail", 0) + totals.get("error", 0)
    documented = [c for c in cards if c["documented"]]
    judged = sum(n for o, n in totals.items() if o != "unsupported")
    incomplete = any(d.complete is False for d in docs)
    if failing:
        outcome = "fail"
        headline = (
            f"FAIL: {totals.get('fail', 0)} checks fail and {totals.get('error', 0)} raise, "
            f"in {sum(not c['documented'] for c in cards)} behaviours."
        )
    elif stale:
        outcome, headline = "fail", f"FAIL: {len(stale)} registry entries are stale (see the registry audit)."
    else:
        outcome, headline = "pass", "PASS: no check fails."
    detail = (
        f"{judged} checks judged against the mathematics; {totals.get('deviation', 0)} of them differ in "
        f"{len(documented)} documented ways (registry entries, one card each); "
        f"{totals.get('unsupported', 0)} more were ruled out by the bindings' declared capabilities."
    )
    if incomplete:
        outcome, headline = "fail", "INCOMPLETE run. " + headline
    return {"outcome": outcome, "headline": headline, "detail": detail}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["safe_url"] = safe_url
    env.filters["pack"] = pack
    env.filters["lazy"] = lazy
    return env


def _worst(counts: dict) -> str:
    return next((o for o in OUTCOME_ORDER if counts.get(o)), "none")


def summary_matrix(records: list[CheckRecord]) -> tuple[list[str], list[dict]]:
    """Categories (columns) and one row per binding with outcome counts per category."""
    categories = sorted({r.category for r in records})
    rows: dict = {}
    for r in records:
        key = (r.framework, r.run, r.binding)
        row = rows.setdefault(
            key,
            {
                "framework": r.framework,
                "run": r.run,
                "binding": r.binding,
                "api": r.api,
                "op": r.op,
                "cells": defaultdict(lambda: defaultdict(int)),
                "total": defaultdict(int),
            },
        )
        row["cells"][r.category][r.outcome] += 1
        row["total"][r.outcome] += 1
    out = []
    for row in rows.values():
        row["worst"] = _worst(row["total"])
        row["cells"] = {c: {"counts": dict(row["cells"][c]), "worst": _worst(row["cells"][c])} for c in categories}
        row["total"] = dict(row["total"])
        out.append(row)
    # failures first, then by framework and binding
    out.sort(
        key=lambda r: (
            OUTCOME_ORDER.index(r["worst"]) if r["worst"] in OUTCOME_ORDER else 9,
            r["framework"],
            r["run"],
            r["binding"],
        )
    )
    return categories, out


def accuracy_table(records: list[CheckRecord]) -> list[dict]:
    """Largest error in units of the derived tolerance per binding x dtype (pass and deviation only)."""
    best: dict = {}
    for r in records:
        if r.outcome != "pass" or not r.errors:
            continue
        key = (r.framework, r.run, r.binding, r.dtype, r.check)
        cur = best.get(key)
        if cur is None or r.errors.tol_units > cur["tol_units"]:
            best[key] = {
                "framework": r.framework,
                "run": r.run,
                "binding": r.binding,
                "dtype": r.dtype,
                "check": r.check,
                "tol_units": r.errors.tol_units,
                "eps_units": r.errors.eps_units,
                "case": r.case,
            }
    return sorted(best.values(), key=lambda x: (x["framework"], x["run"], x["binding"], x["dtype"], x["check"]))


#: the case that exercises each option (the capability matrix's "options" column is measured on these)
OPTION_CASES = {
    "class_weights": "class_weight",
    "sample_weights": "sample_weight",
    "pos_weight": "pos_weight",
    "ignore_index": "ignore_index",
    "label_smoothing": "label_smoothing",
    "spatial_index": "spatial",
}
GOOD = ("pass", "deviation")


def measured_capabilities(records: list[CheckRecord], declared: dict, probes: dict | None = None) -> list[dict]:
    """Per binding, each capability as the suite measured it: for targets, options, reductions, dtypes,
    modes and gradients, every value either ran right (pass or documented deviation, ``ok``), ran
    wrong (fail or error, ``bad``), or was declared but never ran (``untested``); with ``probes``
    (``--probe-capabilities``), what each undeclared value did."""
    probes = probes or {}
    seen: dict = defaultdict(lambda: defaultdict(dict))
    for r in records:
        if r.outcome == "unsupported" or r.check == "relation":
            continue
        key = (r.framework, r.run, r.binding)
        facets = {
            "targets": r.target,
            "reductions": r.reduction,
            "dtypes": r.dtype,
            "modes": r.mode,
            "options": OPTION_CASES.get(r.case),
            "grad": "grad" if r.check == "grad" else None,
        }
        for facet, value in facets.items():
            if value is None:
                continue
            prev = seen[key][facet].get(value)
            seen[key][facet][value] = "bad" if prev == "bad" or r.outcome not in GOOD else "ok"
    out = []
    for b in sorted(declared.values(), key=lambda b: (b["framework"], b["binding"])):
        caps = b["capabilities"]
        runs = sorted({k[1] for k in seen if k[0] == b["framework"] and k[2] == b["binding"]}) or [""]
        for run in runs:
            got = seen.get((b["framework"], run, b["binding"]), {})
            row = {
                "framework": b["framework"],
                "run": run,
                "binding": b["binding"],
                "api": b["api"],
                "doc": b["doc"],
                "op": caps["op"],
                "facets": {},
                "conventions": b.get("conventions", {}),
                "probes": probes.get(f"{b['framework']}::{b['binding']}", []),
            }
            for facet in ("targets", "options", "reductions", "dtypes", "modes"):
                values = sorted(set(caps[facet]) | set(got.get(facet, {})))
                row["facets"][facet] = [(v, got.get(facet, {}).get(v, "untested")) for v in values]
            row["facets"]["grad"] = [("grad", got.get("grad", {}).get("grad", "untested"))] if caps["grad"] else []
            out.append(row)
    return out


def _label_runs(docs: list[Results], labels: list[str]) -> list[Results]:
    """Copies of the documents whose records and sweeps carry ``run``: the run's label where another
    run checked the same framework (two versions side by side), else empty."""
    count: dict = defaultdict(int)
    for d in docs:
        for fw in d.environment["frameworks"]:
            count[fw] += 1
    out = []
    for d, label in zip(docs, labels, strict=True):

        def tag(r, label=label):
            run = label if count[r.framework] > 1 else ""
            return r if r.run == run else replace(r, run=run)  # one run's report copies nothing

        out.append(replace(d, records=[tag(r) for r in d.records], stability=[tag(r) for r in d.stability]))
    return out


def chart_groups(stability: list[dict], timing: list[dict]) -> list[dict]:
    """The page's chart groups (each a tab bar and one chart area); the template finds each by its id,
    never by its place in this list."""
    groups = [{"id": f"stability-{g['axis']}", "charts": g["charts"]} for g in stability]
    if timing:
        groups.append({"id": "speed", "charts": timing})
    return groups


def render(docs: list[Results]) -> str:
    """Render one page from one or more results documents (oldest first when they are versions)."""
    labels = run_labels(docs) if len(docs) > 1 else [""]
    history = {"changes": changes(docs, labels), "trends": trends(docs, labels)} if len(docs) > 1 else None
    docs = _label_runs(docs, labels)
    records = [r for d in docs for r in d.records]
    categories, matrix = summary_matrix(records)
    problems = [r for r in records if r.outcome in ("fail", "error")]
    fired = defaultdict(int)
    for r in records:
        if r.outcome == "deviation" and r.expectation:
            fired[r.expectation] += 1
    entries = {e["id"]: e for d in docs for e in d.expectations["entries"]}
    deviations = [{**entries[i], "count": n} for i, n in sorted(fired.items()) if i in entries]
    bindings, probes = {}, {}
    for d in docs:
        bindings.update(d.environment.get("bindings", {}))
        probes.update(d.environment.get("probes", {}))
    totals = defaultdict(int)
    for r in records:
        totals[r.outcome] += 1
    speed = speed_view(docs)
    stability = stability_charts(docs)
    groups = chart_groups(stability, speed_charts(speed))
    cards = findings(docs)
    stale = [s for d in docs for s in d.expectations["stale"]]
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            verdict=verdict(dict(totals), cards, stale, docs),
            overview=overview(cards),
            chart_ids={g["id"]: g for g in groups},
            docs=docs,
            labels=labels,
            history=history,
            categories=categories,
            matrix=matrix,
            problems=problems,
            deviations=deviations,
            accuracy=accuracy_table(records),
            totals=dict(totals),
            outcomes=OUTCOME_ORDER,
            stability=stability,
            agreement=agreement(docs),
            speed=speed,
            chart_groups=groups,
            chart_lib=library() if groups else None,
            measured=measured_capabilities(records, bindings, probes),
            coverage=coverage_view(docs),
            pairs=interactions_view(docs),
            errors=error_table(docs),
            fuzz=FuzzSection.merged([d.fuzz for d in docs if d.fuzz]) if any(d.fuzz for d in docs) else None,
            findings=cards,
            stale=stale,
            unused=[u for d in docs for u in d.expectations["unused"]],
        )
    )
