"""Peak memory of one call: the process's resident-set high-water mark on the CPU (Linux), or the
framework's device allocator where the adapter exposes one."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def process_peak(call: Callable[[], Any]) -> int | None:
    """Run ``call`` once; return the bytes the process's resident set grew to above its size
    before the call (None where the kernel does not say).

    Writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS, so the high-water mark
    after the call is this call's own peak.
    """
    try:
        _CLEAR.write_text("5")
        before = _status_kb("VmRSS")
    except OSError:
        call()
        return None
    call()
    try:
        peak = _status_kb("VmHWM")
    except OSError:
        return None
    return max(0, peak - before) * 1024
