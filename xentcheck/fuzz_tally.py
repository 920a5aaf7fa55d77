"""What one fuzzing process saw, kept as it goes and written where a campaign's report finds it.

One process keeps one ``FuzzTally``: per binding a ``FuzzRecord`` (xentcheck.records: draws, seconds,
outcomes, the registry entries that fired, the findings by finding key with the smallest draw of each).
Under a campaign it rewrites its own file (``<machine>-<pid>.json`` in a fuzz folder) every few seconds,
atomically: HypoFuzz runs until it is stopped by a signal, so what was seen must already be on disk.
``python -m reports build`` reads these files (``read_tally``) and merges several processes' and
machines' (``FuzzSection.merged``) into the results document's ``fuzz`` section.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from .records import FuzzFinding, FuzzRecord, FuzzSection

__all__ = ["FLUSH_EVERY_S", "FORMAT", "FuzzTally", "TallyError", "is_tally", "read_tally", "tally_path"]

#: the format tag of a tally file (a reader refuses anything else with one line)
FORMAT = "xentcheck-fuzz/1"
#: seconds between two rewrites of a process's file
FLUSH_EVERY_S = 10.0


class TallyError(ValueError):
    """A fuzz tally file that cannot be read: the message is one line naming the file and the problem."""


@dataclass
class FuzzTally:
    """The tally of one process; ``path`` is its file (None: kept in memory only)."""

    path: Path | None
    machine: str = field(default_factory=socket.gethostname)
    #: package -> version of the frameworks fuzzed (a finding names the version it was seen with)
    versions: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    records: dict[str, FuzzRecord] = field(default_factory=dict)
    _flushed: float = 0.0
    _last: tuple[str, float] | None = None

    def binding(self, framework: str, binding: str, op: str) -> FuzzRecord:
        """The record of ``framework``'s ``binding`` (created empty on first use)."""
        key = f"{framework}-{binding}"
        if key not in self.records:
            self.records[key] = FuzzRecord(framework, binding, op)
        return self.records[key]

    def draw(self, record: FuzzRecord, started: float, ended: float) -> None:
        """Count one draw of ``record``'s binding, judged from ``started`` to ``ended`` (perf_counter
        seconds). Its wall seconds run from the end of the process's previous draw when that was the same
        binding's (so the engine's work between the two counts), else from ``started``."""
        record.draws += 1
        record.seconds += ended - started
        key = f"{record.framework}-{record.binding}"
        since = self._last[1] if self._last and self._last[0] == key else started
        record.wall_seconds += ended - min(since, started)
        self._last = (key, ended)

    def find(self, record: FuzzRecord, key: tuple, check: str, outcome: str, reason: str, repro: str, size: int):
        """Count a finding of ``record``'s binding; returns whether its key is new to this process."""
        key = json.loads(json.dumps(key))  # a tuple key and its JSON form (lists) are one finding
        return record.find(FuzzFinding(key, check, outcome, reason, 1, repro, size))

    def section(self, only: str | None = None) -> FuzzSection:
        """This process's tally as a results section (``only``: just that ``framework-binding``)."""
        source = {"machine": self.machine, "pid": os.getpid(), "started": self.started, "updated": time.time()}
        records = [r for k, r in self.records.items() if only is None or k == only]
        return FuzzSection(records, [source], dict(self.versions))

    def as_dict(self, only: str | None = None) -> dict:
        """The tally file's document."""
        return {"format": FORMAT, **self.section(only).to_json()}

    def flush(self, force: bool = False) -> None:
        """Rewrite this process's file (atomically), at most every ``FLUSH_EVERY_S`` unless ``force``."""
        now = time.monotonic()
        if self.path is None or (not force and now - self._flushed < FLUSH_EVERY_S):
            return
        self._flushed = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=1, allow_nan=False))
        os.replace(tmp, self.path)


def tally_path(folder: Path) -> Path:
    """This process's file in ``folder``: one per machine and process, so processes never share a file."""
    return folder / f"{socket.gethostname()}-{os.getpid()}.json"


def is_tally(path: str | Path) -> bool:
    """Whether ``path`` is a fuzz folder or looks like a tally file (its start names the format)."""
    p = Path(path)
    if p.is_dir():
        return True
    try:
        with p.open() as f:
            return FORMAT in f.read(200)
    except (OSError, UnicodeDecodeError):
        return False


def read_tally(path: str | Path) -> FuzzSection:
    """One tally file's section, or a fuzz folder's files merged; ``TallyError`` (one line) otherwise."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.json"))
        if not files:
            raise TallyError(f"{p}: no fuzz tally files (*.json) in this folder")
        return FuzzSection.merged([read_tally(f) for f in files])
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise TallyError(f"{p}: not a readable fuzz tally ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TallyError(f"{p}: not a fuzz tally (expected format {FORMAT!r})")
    from .results import ResultsError, validate_fuzz

    try:
        validate_fuzz({k: v for k, v in doc.items() if k != "format"}, str(p))
    except ResultsError as e:
        raise TallyError(str(e)) from None
    return FuzzSection.from_json(doc)
