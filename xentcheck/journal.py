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
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise JournalError(f"{p}: cannot read the journal ({e}); pass the .partial.jsonl file a run left") from None
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        header = {}
    if not isinstance(header, dict) or header.get("journal") != JOURNAL_VERSION:
        raise JournalError(f"{p}: not a xentcheck journal (no header line); pass the .partial.jsonl file a run left")
    recs: dict[str, list] = {k: [] for k in _KINDS}
    body = [line for line in lines[1:] if line.strip()]
    for i, line in enumerate(body):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(body) - 1:  # a run killed mid-write leaves a torn last line: the rest is kept
                break
            raise JournalError(f"{p}: line {i + 2} is not JSON ({e.msg}); the journal is damaged") from None
        recs[entry["kind"]].append(_KINDS[entry["kind"]].from_json(entry["record"]))
    checks = sorted(recs["check"], key=lambda r: r.id)
    bench = header.get("bench")
    return Results(environment=header["environment"], summary=summarize(checks),
                   expectations={"entries": header.get("expectations", []), "stale": [], "unused": []},
                   records=checks, stability=sorted(recs["stability"], key=lambda r: r.id),
                   benchmarks=BenchSection.from_json({**bench, "records": [r.to_json() for r in recs["bench"]]})
                   if bench and recs["bench"] else None,
                   complete=False, incomplete={"reason": "recovered from the journal of a run that did not finish",
                                               "recorded": sum(map(len, recs.values())),
                                               "expected": header.get("expected")})
