"""Peak memory: of one call (the process's resident-set high-water mark on the CPU, Linux; or the
framework's device allocator where the adapter exposes one), and of the whole sweep (the process's
own high-water mark across those resets, and its descendants' resident set, sampled between
configurations).

Resetting the high-water mark (``/proc/self/clear_refs``) resets ``getrusage``'s ``ru_maxrss`` too,
so every reset here first folds the mark reached so far into :func:`process_peak_bytes`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")
#: the process's highest VmHWM before the latest reset (bytes)
_highest = 0


def _status_kb(field: str, status: Path = _STATUS) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", status.read_text(), re.M)
    return int(m[1]) if m else 0


def _reset() -> None:
    """Fold the high-water mark into :data:`_highest`, then reset it to the current RSS."""
    global _highest
    _highest = max(_highest, _status_kb("VmHWM") * 1024)
    _CLEAR.write_text("5")


def process_peak_available() -> bool:
    """True where the kernel lets a process reset its RSS high-water mark (Linux >= 4.0)."""
    try:
        _reset()
        return _status_kb("VmHWM") > 0
    except OSError:
        return False


def process_peak_bytes() -> int | None:
    """This process's peak resident set since it started, across the resets of :func:`start` (None
    where the kernel does not say)."""
    try:
        return max(_highest, _status_kb("VmHWM") * 1024) or None
    except OSError:
        return _highest or None


def start() -> int | None:
    """Reset the process's RSS high-water mark; the resident bytes now, for :func:`peak_since`
    (None where the kernel does not say).

    Writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS, so the high-water mark
    read afterwards is the peak of what ran in between.
    """
    try:
        _reset()
        return _status_kb("VmRSS") * 1024
    except OSError:
        return None


def peak_since(before: int | None) -> int | None:
    """The bytes the resident set grew to above ``before`` (from :func:`start`) since then."""
    if before is None:
        return None
    try:
        return max(0, _status_kb("VmHWM") * 1024 - before)
    except OSError:
        return None


def descendants_rss_bytes(pid: int | None = None, proc: Path = Path("/proc")) -> int:
    """The resident bytes of all descendants of ``pid`` (default: this process) now: compile workers,
    subprocesses (Linux ``/proc``; 0 where unreadable). Pages shared between processes count in each."""
    pid = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    try:
        entries = list(proc.iterdir())
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "status").read_text()
        except OSError:  # the process ended meanwhile
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", text, re.M)
        kb = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
        rss[int(entry.name)] = int(kb[1]) * 1024 if kb else 0
        if ppid:
            children.setdefault(int(ppid[1]), []).append(int(entry.name))
    total, todo, seen = 0, list(children.get(pid, [])), {pid}
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += rss.get(p, 0)
        todo += children.get(p, [])
    return total
