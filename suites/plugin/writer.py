"""Writing a run's output: the crash journal as records arrive, then the results file, the report and
the comparison with a baseline at the end."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from reports.diff import diff
from reports.diff import lines as diff_lines
from reports.html import render
from xentcheck.bench.plan import BenchPlan
from xentcheck.expectations import Registry, audit
from xentcheck.records import OUTCOMES, BenchRecord, CheckRecord, StabilityRecord
from xentcheck.results import Results, document, write_atomic


def check_writable(flag: str, path: Path) -> None:
    """Fail at start-up, in one line, if ``path`` cannot be written (not after a long run)."""
    if path.is_dir():
        raise pytest.UsageError(f"{flag}={path} is a folder; pass a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise pytest.UsageError(f"{flag}={path}: cannot create its folder ({e.strerror}); choose a writable path") \
            from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise pytest.UsageError(f"{flag}={path}: not writable; choose a writable path")


Record = CheckRecord | BenchRecord | StabilityRecord


@dataclass
class Writer:
    """Collects the run's records, journals each at once (a crash later loses nothing before it), and
    writes results and report at the end."""

    results_path: Path
    report_path: Path
    records: list[CheckRecord] = field(default_factory=list)
    stability: list[StabilityRecord] = field(default_factory=list)
    failed: bool = False  # the results or the report could not be written
    _journal: IO[str] | None = None

    @property
    def journal_path(self) -> Path:
        return self.results_path.with_name(self.results_path.name + ".partial.jsonl")

    def add(self, rec: Record, bench: BenchPlan | None = None) -> None:
        """Keep a record and journal it."""
        if isinstance(rec, BenchRecord):
            bench.records.append(rec)
        elif isinstance(rec, StabilityRecord):
            self.stability.append(rec)
        else:
            self.records.append(rec)
        if self._journal is None:  # the folder was checked writable at start-up
            self._journal = open(self.journal_path, "w")  # noqa: SIM115 - open for the whole run
        self._journal.write(json.dumps(rec.to_json()) + "\n")
        self._journal.flush()

    def finish(self, environment: dict, registry: Registry, versions: dict, bench: BenchPlan | None,
               sliced: bool, baseline: Results | None) -> tuple[list[str], bool]:
        """Write results and report; returns the lines to print at the end of the run and whether the
        run regressed against the baseline. ``sliced``: the run was a slice (-k, -m, --one-per-category),
        so the registry audit only reports."""
        benchmarks = bench.section() if bench else None
        if not self.records and not benchmarks and not self.stability:
            return [], False
        stale, unused = audit(registry, self.records, set(environment["frameworks"]), versions)
        if sliced:  # a slice may leave out every input where an entry shows: report, do not fail
            stale, unused = [], []
        expectations = {"entries": [e.as_dict() for e in registry.entries], "stale": stale, "unused": unused}
        doc = document(environment, self.records, expectations, benchmarks, self.stability)
        lines = []
        if self.records:
            lines.append("xentcheck: " + ", ".join(f"{doc.summary.get(k, 0)} {k}" for k in OUTCOMES))
        if benchmarks:
            counts = {o: sum(r.outcome == o for r in benchmarks.records) for o in ("ok", "unsupported", "error")}
            lines.append(f"xentcheck: {counts['ok']} benchmarks timed, {counts['unsupported']} unsupported, "
                         f"{counts['error']} error")
        lines += [f"xentcheck: STALE {s}" for s in stale]
        lines += [f"xentcheck: warning: {u}" for u in unused]
        if sliced:
            lines.append("xentcheck: expectations audit skipped: the run was a slice (-k, -m or --one-per-category)")
        try:
            write_atomic(self.results_path, json.dumps(doc.to_json(), indent=1, allow_nan=False))
            write_atomic(self.report_path, render([doc]))
        except OSError as e:
            self.failed = True
            lines.append(f"xentcheck: cannot write results/report ({e}); pass writable paths with --results/--report")
            return lines, False
        if self._journal is not None:
            self._journal.close()
            self.journal_path.unlink(missing_ok=True)
        lines.append(f"xentcheck: results written to {self.results_path}")
        lines.append(f"xentcheck: report written to {self.report_path}")
        regressed = False
        if baseline is not None:
            changes = diff(baseline, doc)
            lines += [f"xentcheck: baseline: {line}" for line in diff_lines(changes)]
            regressed = bool(changes.regressions)
        return lines, regressed

    def close_journal(self) -> str | None:
        """The journal's path, if one was written (kept: a harness error happened)."""
        return None if self._journal is None else str(self.journal_path)
