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


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere): the harness's own clock
    includes interpreter start-up and imports, not only what pytest times."""
    try:
        start_ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
        uptime = float(open("/proc/uptime").read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int | None:
    """This process's peak resident memory (bytes), where the platform reports it. The benchmark sweep
    resets the kernel's high-water mark before each timed round (which resets ``ru_maxrss`` too), and
    keeps the mark reached before each reset: the larger of the two is the process's peak."""
    from .bench.memory import process_peak_bytes

    try:
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    except (ImportError, OSError):
        own = None
    return max(own or 0, process_peak_bytes() or 0) or None


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
        "interactions": {},
    }
