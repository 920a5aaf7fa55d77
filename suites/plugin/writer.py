"""Writing a run's output: the lock on the results path, the journal as records arrive, then the
results file (marked complete or not), the report and the comparison with a baseline at the end."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from xentcheck.bench.plan import BenchPlan
from xentcheck.exception_text import one_line
from xentcheck.expectations import RunScope, audit
from xentcheck.journal import Journal, journal_path
from xentcheck.records import OUTCOMES, BenchRecord, CheckRecord, FuzzSection, Results, StabilityRecord
from xentcheck.results import document, dumps, write_atomic
from xentcheck.safe_output import OutputError, open_lock, target

if TYPE_CHECKING:
    from .session import XentSession


def aside(work: Callable[[], object], patience_s: float = 120.0) -> Callable[[], None]:
    """Start ``work`` in a forked child and return the call that waits for it. Where the child cannot
    do it (no fork, it failed, or it is still at it after ``patience_s``), the wait does it here, so its
    error, if any, is raised where the caller handles it. The child only computes and writes a file
    (no output, no atexit handlers: it ends with ``os._exit``)."""
    fork = getattr(os, "fork", None)
    try:
        pid = fork() if fork else None
    except OSError:
        pid = None
    if pid is None:

        def here() -> None:
            work()

        return here
    if pid == 0:  # the child
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)

    def wait() -> None:
        deadline = time.monotonic() + patience_s
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    work()
                return
            if time.monotonic() > deadline:  # stuck (a lock another thread held at the fork): do it here
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                work()
                return
            time.sleep(0.01)

    return wait


def check_writable(flag: str, path: Path) -> None:
    """Fail at start-up, in one line, if ``path`` cannot be written (not after a long run)."""
    if path.is_dir():
        raise pytest.UsageError(f"{flag}={path} is a folder; pass a file path")
    try:  # a device, a pipe or a socket: never replaced by a regular file
        target(path)
    except OutputError as e:
        raise pytest.UsageError(f"{flag}={e}") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise pytest.UsageError(
            f"{flag}={path}: cannot create its folder ({e.strerror}); choose a writable path"
        ) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise pytest.UsageError(f"{flag}={path}: not writable; choose a writable path")


def lock(results: Path) -> IO[str]:
    """Hold ``RESULTS.lock`` for the whole run: a second run on the same results path fails at start-up
    (the lock goes with the process, also when it is killed)."""
    path = results.with_name(results.name + ".lock")
    try:
        f = open_lock(path)  # held until the process ends; never through a planted link
    except OutputError as e:
        raise pytest.UsageError(f"--results: {e}") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise pytest.UsageError(
            f"--results={results}: another xentcheck run is writing it ({holder}); wait for it "
            f"to finish or pass another --results"
        ) from None
    f.seek(0)
    f.truncate()
    from .supervise import supervisor_pid

    f.write(f"pid {supervisor_pid()}\n")  # the process the user started (the supervisor, when supervised)
    f.flush()
    return f


Record = CheckRecord | BenchRecord | StabilityRecord


def _to_wandb(doc: Results, results_path: Path) -> str:
    """--wandb: the run as a W&B run (the results file is written first: an export that fails loses nothing)."""
    from reports.wandb_export import ExportError, export

    try:
        (folder,) = export([doc])
    except ExportError as e:
        return f"xentcheck: W&B export skipped: {e}"
    except Exception as e:  # e.g. no network in online mode: the results are safe, the export can be redone
        return f"xentcheck: W&B export failed ({one_line(e)}); retry with python -m reports wandb {results_path}"
    return f"xentcheck: W&B run written to {folder}"


@dataclass
class Writer:
    """Collects the run's records, journals each at once (a crash later loses nothing before it), and
    writes results and report at the end. ``header`` gives what the journal starts with."""

    results_path: Path
    report_path: Path
    header: Callable[[], dict] = dict
    records: list[CheckRecord] = field(default_factory=list)
    stability: list[StabilityRecord] = field(default_factory=list)
    failed: bool = False  # the results or the report could not be written
    #: cases from outside the repository (--cases): their inputs may be the user's own data, so their
    #: records carry no snippet (which pastes the inputs) unless --snippets-with-inputs
    redact_cases: frozenset[str] = frozenset()
    #: registry entries the fuzz slice's draws showed (the fuzz layer writes no record): for the audit
    fuzz_fired: set[str] = field(default_factory=set)
    #: each fuzz item's tally document (xentcheck.fuzz_tally): merged into the results' fuzz section
    fuzz_tallies: list[dict] = field(default_factory=list)
    journal: Journal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = Journal(journal_path(self.results_path))

    def add(self, rec: Record, bench: BenchPlan | None = None) -> None:
        """Keep a record and journal it."""
        if isinstance(rec, CheckRecord) and rec.repro and rec.case in self.redact_cases:
            rec = replace(rec, repro=None)  # a report may be shared; an external case's arrays stay out of it
        if isinstance(rec, BenchRecord):
            bench.records.append(rec)
        elif isinstance(rec, StabilityRecord):
            self.stability.append(rec)
        else:
            self.records.append(rec)
        self.journal.write(rec, self.header)

    def finish(
        self,
        run: XentSession,
        sliced: bool,
        incomplete: dict | None = None,
        harness: dict | None = None,
        keyword: str = "",
    ) -> tuple[list[str], bool]:
        """Write results and report of ``run`` (its environment, registry, versions, benchmarks, baseline
        and options); returns the lines to print at the end of the run and whether the run regressed
        against the baseline. ``sliced``: the run was a slice (-k, -m, --case, --binding,
        --one-per-category); ``keyword``: its -k expression (the baseline's checks it would select must be
        here); ``incomplete``: why the run stopped early (then the registry audit only reports, the file
        is marked incomplete and the journal is kept)."""
        environment, registry, versions, bench = run.environment, run.registry, run.versions(), run.bench
        baseline, wandb = run.baseline, run.options.wandb
        benchmarks = bench.section() if bench else None
        if (
            not self.records
            and not benchmarks
            and not self.stability
            and not self.fuzz_tallies
            and not environment.get("probes")
        ):
            self.journal.close(remove=incomplete is None)
            return [], False
        scope = RunScope(
            frozenset(environment["frameworks"]),
            versions,
            declared=frozenset(environment.get("bindings", {})),
            fired_elsewhere=frozenset(self.fuzz_fired),
        )
        stale, unused = audit(registry, self.records, scope)
        if sliced or incomplete:  # a slice or a cut-short run may leave out every input where an entry shows
            stale, unused = [], []
        expectations = {"entries": [e.as_dict() for e in registry.entries], "stale": stale, "unused": unused}
        # the report (jinja2) loads here, at the end: a run that writes nothing never pays for it
        from reports.html import render

        doc = document(
            environment,
            self.records,
            expectations,
            benchmarks,
            self.stability,
            incomplete=incomplete,
            harness=harness,
            fuzz=FuzzSection.merged([FuzzSection.from_json(t) for t in self.fuzz_tallies])
            if self.fuzz_tallies
            else None,
        )
        lines = []
        if self.records:
            lines.append(
                f"xentcheck: {len(self.records)} records: "
                + ", ".join(f"{doc.summary.get(k, 0)} {k}" for k in OUTCOMES)
            )
        if benchmarks:
            counts = {o: sum(r.outcome == o for r in benchmarks.records) for o in ("ok", "unsupported", "error")}
            lines.append(
                f"xentcheck: {counts['ok']} benchmarks timed, {counts['unsupported']} unsupported, "
                f"{counts['error']} error"
            )
        # registry housekeeping comes last, after where the results went (as the report's audit section)
        audit_lines = [f"xentcheck: STALE {s}" for s in stale] + [f"xentcheck: warning: {u}" for u in unused]
        if incomplete:
            expected = f" of {incomplete['expected']} collected" if incomplete.get("expected") is not None else ""
            lines.append(
                f"xentcheck: INCOMPLETE: {incomplete['reason']}: {incomplete['recorded']} records"
                f"{expected}; the results are marked incomplete (the upgrade gate refuses them) and the "
                f"journal is kept: {self.journal.path}"
            )
        elif sliced:
            lines.append(
                f"xentcheck: expectations audit skipped: the run was a slice "
                f"({environment.get('slice') or '-k, -m, --case, --binding or --one-per-category'})"
            )
        try:
            # the report renders in a child process while this one validates and writes the results: the
            # run's end is otherwise serial, one core idle (about a second of a 25,000-record run)
            report = aside(lambda: write_atomic(self.report_path, render([doc])))
            # one record per line: diffable and greppable, without the cost of indenting 10 MB of nesting
            write_atomic(self.results_path, dumps(doc))
            report()
        except OSError as e:
            self.failed = True
            lines.append(f"xentcheck: cannot write results/report ({e}); pass writable paths with --results/--report")
            return lines + audit_lines, False
        self.journal.close(remove=incomplete is None)
        lines.append(f"xentcheck: results written to {self.results_path}")
        lines.append(f"xentcheck: report written to {self.report_path}")
        lines += audit_lines
        if wandb:
            lines.append(_to_wandb(doc, self.results_path))
        regressed = False
        if baseline is not None:
            from reports.diff import diff, keyword_left_out
            from reports.diff import lines as diff_lines

            changes = diff(
                baseline,
                doc,
                accept=frozenset({"removed"}) if sliced and not keyword else frozenset(),
                left_out=keyword_left_out(keyword) if keyword else None,
            )
            lines += [f"xentcheck: baseline: {line}" for line in diff_lines(changes)]
            regressed = bool(changes.regressions)
        return lines, regressed
