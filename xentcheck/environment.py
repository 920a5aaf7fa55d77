"""Facts about the machine and the run, for the results file (no framework imports here)."""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo, else platform's answer)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def base_environment(device: str, argv: list[str] | None = None) -> dict:
    """Machine facts shared by every framework; adapters add their own under ``frameworks``."""
    argv = sys.argv if argv is None else argv
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in argv),
        "device": device,
        "frameworks": {},
        "skipped": {},
        "bindings": {},
    }
