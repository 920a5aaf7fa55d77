"""Peak memory of one call: the process's resident-set high-water mark on the CPU (Linux), or the
framework's device allocator where the adapter exposes one."""

from __future__ import annotations

import re
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    return int(m[1]) if m else 0


def process_peak_available() -> bool:
    """True where the kernel lets a process reset its RSS high-water mark (Linux >= 4.0)."""
    try:
        _CLEAR.write_text("5")
        return _status_kb("VmHWM") > 0
    except OSError:
        return False


def start() -> int | None:
    """Reset the process's RSS high-water mark; the resident bytes now, for :func:`peak_since`
    (None where the kernel does not say).

    Writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS, so the high-water mark
    read afterwards is the peak of what ran in between.
    """
    try:
        _CLEAR.write_text("5")
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
