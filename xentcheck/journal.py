"""The journal of a run: every record as JSON lines, written as it arrives, so an interrupted or killed
run loses nothing that finished. One file per run (``RESULTS.<stamp>-<pid>.partial.jsonl``), removed
only after the results file of a complete run is written; :func:`recover` turns one into a results
document marked incomplete (``python -m reports recover``)."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .json_safety import plain
from .records import BenchRecord, BenchSection, CheckRecord, Results, StabilityRecord, summarize
from .safe_output import open_new

JOURNAL_VERSION = 1
Record = CheckRecord | BenchRecord | StabilityRecord
_KINDS = {"check": CheckRecord, "bench": BenchRecord, "stability": StabilityRecord}


class JournalError(ValueError):
    """An unreadable journal; the message is one line naming the file and the problem."""


def journal_path(results: Path) -> Path:
    """This run's journal beside ``results`` (a timestamp and the process id: runs never share one)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return results.with_name(f"{results.name}.{stamp}-{os.getpid()}.partial.jsonl")


class Journal:
    """Appends records to a journal file; the header (environment, registry) goes first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def write(self, rec: Record, header: Callable[[], dict]) -> None:
        """Append ``rec``; the first write opens the file and writes ``header()`` before it."""
        if self._file is None:
            self._file = open_new(self.path)  # kept open for the whole run; never through a planted link
            self._line({"journal": JOURNAL_VERSION, **header()})
        kind = "bench" if isinstance(rec, BenchRecord) else "stability" if isinstance(rec, StabilityRecord) else "check"
        self._line({"kind": kind, "record": rec.to_json()})

    def _line(self, obj: dict) -> None:
        self._file.write(json.dumps(obj) + "\n")
        self._file.flush()

    @property
    def written(self) -> bool:
        return self._file is not None

    def close(self, remove: bool) -> None:
        if self._file is not None:
            self._file.close()
            if remove:
                self.path.unlink(missing_ok=True)


def recover(path: str | Path) -> Results:
    """A results document, marked incomplete, from the journal of a run that did not finish."""
    return recover_lines(path)[0]


def _entry(line: str) -> Record:
    """The record of one journal line; ValueError (or KeyError, TypeError) for one of the wrong shape."""
    entry = json.loads(line)
    if not isinstance(entry, dict) or entry.get("kind") not in _KINDS or not isinstance(entry.get("record"), dict):
        raise ValueError("not a {kind, record} line")
    return _KINDS[entry["kind"]].from_json(entry["record"])


def recover_lines(path: str | Path) -> tuple[Results, list[str]]:
    """:func:`recover`, and one line per journal line it skipped (damaged, or not a record): every
    well-formed record is kept whatever its neighbours hold."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise JournalError(f"{p}: cannot read the journal ({e}); pass the .partial.jsonl file a run left") from None
    try:
        header = json.loads(lines[0]) if lines else {}
    except (json.JSONDecodeError, RecursionError):
        header = {}
    if (
        not isinstance(header, dict)
        or header.get("journal") != JOURNAL_VERSION
        or not isinstance(header.get("environment"), dict)
    ):
        raise JournalError(f"{p}: not a xentcheck journal (no header line); pass the .partial.jsonl file a run left")
    recs: dict[str, list] = {k: [] for k in _KINDS}
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rec = _entry(line)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            what = "not JSON" if isinstance(e, json.JSONDecodeError) else f"not a record ({type(e).__name__}: {e})"
            skipped.append(f"line {number}: {what}"[:200])
            continue
        kind = "bench" if isinstance(rec, BenchRecord) else "stability" if isinstance(rec, StabilityRecord) else "check"
        if (kind, rec.id) in seen:  # one record per id: the first written stands
            skipped.append(f"line {number}: a second record for {rec.id}")
            continue
        seen.add((kind, rec.id))
        recs[kind].append(rec)
    checks = sorted(recs["check"], key=lambda r: r.id)
    bench = header.get("bench")
    doc = Results(
        environment=plain(header["environment"]),
        summary=summarize(checks),
        expectations={"entries": header.get("expectations", []), "stale": [], "unused": []},
        records=checks,
        stability=sorted(recs["stability"], key=lambda r: r.id),
        benchmarks=BenchSection.from_json({**bench, "records": [r.to_json() for r in recs["bench"]]})
        if isinstance(bench, dict) and recs["bench"]
        else None,
        complete=False,
        incomplete={
            "reason": "recovered from the journal of a run that did not finish",
            "recorded": sum(map(len, recs.values())),
            "expected": header.get("expected"),
        },
    )
    return doc, skipped
