"""What a fuzz campaign saw, per binding: draws, seconds spent judging them, outcomes, the registry
entries that fired, and the findings grouped by finding key (xentcheck.fuzz.finding_key), each with the
smallest draw that showed it.

One process keeps one ``FuzzTally`` and rewrites its own file (``<machine>-<pid>.json`` in a fuzz
folder) every few seconds, atomically: a campaign's processes are stopped by a signal (HypoFuzz runs
until killed), so what was seen must already be on disk. ``python -m reports build`` reads these files
(``read_tally``) and merges several processes' and machines' (``merge``) into the results document's
``fuzz`` section.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: the format tag of a tally file (a reader refuses anything else with one line)
FORMAT = "xentcheck-fuzz/1"
#: seconds between two rewrites of a process's file
FLUSH_EVERY_S = 10.0


class TallyError(ValueError):
    """A fuzz tally file that cannot be read: the message names the file and the problem."""


@dataclass
class Finding:
    """One behaviour: draws of one binding whose check failed or erred with the same finding key."""

    key: list
    check: str
    outcome: str
    reason: str
    count: int
    #: the smallest draw that showed it (fewest elements, then shortest repro): a minimal example
    repro: str
    size: int


@dataclass
class BindingTally:
    """What one process saw of one binding."""

    framework: str
    binding: str
    op: str
    draws: int = 0
    #: seconds spent in the draws' calls and judging (the draws per second's denominator)
    seconds: float = 0.0
    #: seconds from the end of the previous draw of this binding to the end of this one, where the two
    #: were consecutive in the process: the judging plus the engine's own work between draws (generation,
    #: HypoFuzz's coverage tracing), so draws / wall_seconds is the rate a campaign actually gets
    wall_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    #: registry entry -> how many checks it turned into a documented deviation
    fired: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, outcome: str, expectation: str | None) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome == "deviation" and expectation:
            for name in expectation.split("+"):
                self.fired[name] = self.fired.get(name, 0) + 1

    def find(self, key: list, check: str, outcome: str, reason: str, repro: str, size: int, count: int = 1) -> bool:
        """Count ``count`` draws of a finding; returns whether its key is new to this tally."""
        key = json.loads(json.dumps(key))  # a tuple key and its JSON form (lists) are the same finding
        for f in self.findings:
            if f.key == key:
                f.count += count
                if (size, len(repro)) < (f.size, len(f.repro)):
                    f.repro, f.size, f.reason, f.outcome = repro, size, reason, outcome
                return False
        self.findings.append(Finding(key, check, outcome, reason, count, repro, size))
        return True


@dataclass
class FuzzTally:
    """The tally of one process; ``path`` is its file (None: kept in memory only)."""

    path: Path | None
    machine: str = field(default_factory=socket.gethostname)
    #: package -> version of the frameworks fuzzed (a finding names the version it was seen with)
    versions: dict = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    bindings: dict[str, BindingTally] = field(default_factory=dict)
    _flushed: float = 0.0
    _last: tuple[str, float] | None = None

    def draw(self, tally: BindingTally, started: float, ended: float) -> None:
        """Count one draw of ``tally``'s binding, judged from ``started`` to ``ended`` (perf_counter)."""
        tally.draws += 1
        tally.seconds += ended - started
        key = f"{tally.framework}-{tally.binding}"
        since = self._last[1] if self._last and self._last[0] == key else started
        tally.wall_seconds += ended - min(since, started)
        self._last = (key, ended)

    def binding(self, framework: str, binding: str, op: str) -> BindingTally:
        key = f"{framework}-{binding}"
        if key not in self.bindings:
            self.bindings[key] = BindingTally(framework, binding, op)
        return self.bindings[key]

    def as_dict(self, only: str | None = None) -> dict:
        """The tally file's document (``only``: just that ``framework-binding``'s tally)."""
        return {
            "format": FORMAT,
            "machine": self.machine,
            "pid": os.getpid(),
            "started": self.started,
            "updated": time.time(),
            "versions": self.versions,
            "bindings": [asdict(b) for k, b in self.bindings.items() if only is None or k == only],
        }

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


def read_tally(path: Path) -> dict:
    """One tally file's document; ``TallyError`` (one line) when it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise TallyError(f"{path}: not a readable fuzz tally ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("bindings"), list):
        raise TallyError(f"{path}: not a fuzz tally (expected format {FORMAT!r})")
    for b in doc["bindings"]:
        missing = {"framework", "binding", "op", "draws", "seconds", "findings"} - set(b)
        if missing:
            raise TallyError(f"{path}: a binding's tally lacks {sorted(missing)}")
    return doc


def merge(docs: list[dict]) -> dict:
    """Several processes' or machines' tallies as one: per binding, draws, seconds, outcomes and fired
    entries add up, findings with the same key add their counts and keep the smallest draw. Draws per
    second is draws over seconds summed across processes (each process's own rate, added: the campaign's
    throughput per binding). ``sources`` names each file's machine and process."""
    out: dict[str, BindingTally] = {}
    versions: dict = {}
    sources = []
    for doc in docs:
        sources.append(
            {
                "machine": doc.get("machine"),
                "pid": doc.get("pid"),
                "started": doc.get("started"),
                "updated": doc.get("updated"),
            }
        )
        for pkg, ver in (doc.get("versions") or {}).items():
            versions.setdefault(pkg, ver)
        for b in doc["bindings"]:
            t = out.setdefault(f"{b['framework']}-{b['binding']}", BindingTally(b["framework"], b["binding"], b["op"]))
            t.draws += b["draws"]
            t.seconds += b["seconds"]
            t.wall_seconds += b.get("wall_seconds", b["seconds"])
            for k, v in (b.get("outcomes") or {}).items():
                t.outcomes[k] = t.outcomes.get(k, 0) + v
            for k, v in (b.get("fired") or {}).items():
                t.fired[k] = t.fired.get(k, 0) + v
            for f in b["findings"]:
                t.find(f["key"], f["check"], f["outcome"], f["reason"], f["repro"], f["size"], f["count"])
    bindings = []
    for t in sorted(out.values(), key=lambda t: (t.framework, t.binding)):
        row = asdict(t)
        row["draws_per_s"] = round(t.draws / t.seconds, 2) if t.seconds > 0 else None
        row["draws_per_wall_s"] = round(t.draws / t.wall_seconds, 2) if t.wall_seconds > 0 else None
        bindings.append(row)
    return {"sources": sources, "versions": versions, "bindings": bindings}
