"""Several results files in one report: labels for each run, what changed between consecutive runs,
and each changed check's trend across all of them (when a behaviour appeared, when it went away).

Runs are taken in the order given (oldest first), e.g. one per framework version.
"""

from __future__ import annotations

from xentcheck.records import Results

from .diff import Diff, diff


def package_versions(doc: Results, frameworks: set[str] | None = None) -> dict[str, str]:
    """Package versions of a run (of ``frameworks`` only, when given): an adapter's facts named by a bare
    package ("torch", "keras"); dotted facts ("torch.threads", "keras.backend") are context, not identity."""
    return {
        k: v
        for fw, facts in doc.environment.get("frameworks", {}).items()
        if frameworks is None or fw in frameworks
        for k, v in facts.items()
        if "." not in k and isinstance(v, str)
    }


def run_labels(docs: list[Results]) -> list[str]:
    """A short, distinct label per run: the versions that differ between runs (else all of them),
    plus the device when runs differ in device; a counter breaks any remaining tie."""
    vers = [package_versions(d) for d in docs]
    keys = sorted({k for v in vers for k in v})
    differing = [k for k in keys if len({v.get(k) for v in vers}) > 1]
    devices = {d.environment.get("device") for d in docs}
    labels = []
    for d, v in zip(docs, vers, strict=True):
        # same versions everywhere (e.g. a rerun): the date tells the runs apart
        parts = [f"{k} {v[k]}" for k in differing if k in v] or [d.environment.get("date", "run")[:16]]
        if len(devices) > 1:
            parts.append(f"on {d.environment.get('device')}")
        labels.append(", ".join(parts))
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):
        seen[lab] = seen.get(lab, 0) + 1
        if labels.count(lab) > 1:
            labels[i] = f"{lab} (#{seen[lab]})"
    return labels


def _overlap(a: Results, b: Results) -> bool:
    ids = {r.id for r in a.records}
    return any(r.id in ids for r in b.records)


def changes(docs: list[Results], labels: list[str]) -> list[dict]:
    """The diff of each run against the latest earlier run that checked the same things (runs of
    different frameworks side by side are not compared)."""
    out = []
    for j in range(1, len(docs)):
        i = next((i for i in range(j - 1, -1, -1) if _overlap(docs[i], docs[j])), None)
        if i is None:
            continue
        d: Diff = diff(docs[i], docs[j])
        out.append(
            {
                "old": labels[i],
                "new": labels[j],
                "diff": d,
                "regressions": d.regressions,
                "empty": not (d.outcomes or d.numbers or d.added or d.removed or d.speed or d.stability),
            }
        )
    return out


def trends(docs: list[Results], labels: list[str]) -> dict:
    """Each check whose outcome, expectation or error (beyond one tolerance unit) is not the same in
    every run that has it, with its state per run; ``None`` where a run lacks the check."""
    by_run = [{r.id: r for r in d.records} for d in docs]
    ids = sorted({i for run in by_run for i in run})
    rows = []
    for rid in ids:
        states = []
        for run in by_run:
            r = run.get(rid)
            states.append(
                None
                if r is None
                else {
                    "outcome": r.outcome,
                    "expectation": r.expectation,
                    "tol_units": r.errors.tol_units if r.errors else None,
                }
            )
        present = [s for s in states if s is not None]
        if len(present) < 2:
            continue
        kinds = {(s["outcome"], s["expectation"]) for s in present}
        units = [s["tol_units"] for s in present if s["tol_units"] is not None]
        if len(kinds) > 1 or (units and max(units) - min(units) > 1):
            rows.append({"id": rid, "states": states})
    return {"labels": labels, "rows": rows}
