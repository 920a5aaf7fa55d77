"""The benchmark sweep (``./run bench``), one pytest process per framework, one after another.

    python scripts/bench_sweep.py [--results=results/bench.json] [--report=results/bench.html]
        [--frameworks=numpy,torch,...] [any other option of pytest and of the sweep, e.g. --bench-sizes=llm -k F.]

Why a process per framework: a framework's allocator keeps what it once held (TensorFlow holds 3.8 GB
after a few configurations at 4096x32000, released only when its process ends), so one process timing
every framework held them all at once (18.4 GB). Each part writes its own results file (next to
``--results``, in ``bench-parts/``); they are merged into one document (``xentcheck.bench.merge``: the
floor is the best any part measured, every floor multiple computed again against it) and one report.

The sweep's peak memory: this script samples the resident set of each part's whole process tree (the
pytest process and its descendants, e.g. Inductor's compile workers) every ``SAMPLE_S`` seconds; the
largest part's figure is the sweep's, since they run one after another. Exit status: the largest of
the parts' (1 when a binding raised), 2 on bad usage.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xentcheck.bench import memory  # noqa: E402
from xentcheck.bench.merge import merge  # noqa: E402
from xentcheck.results import ResultsError, dumps, load  # noqa: E402

#: the frameworks the sweep times unless told otherwise (Keras's other backends only when named)
DEFAULT = ("numpy", "torch", "tensorflow", "jax")
SAMPLE_S = 0.5
METHOD = (
    "one process per framework, run one after another; each part's process tree (the pytest process and "
    f"its descendants) sampled every {SAMPLE_S} s through /proc (a spike shorter than that is missed; pages "
    "shared between processes count in each); the sweep's peak is the largest part's"
)


def _option(args: list[str], name: str, default: str | None) -> tuple[str | None, list[str]]:
    """The value of ``--name=VALUE`` or ``--name VALUE`` in ``args``, and the other arguments."""
    value, rest, i = default, [], 0
    while i < len(args):
        a = args[i]
        if a == name and i + 1 < len(args):
            value, i = args[i + 1], i + 2
            continue
        if a.startswith(name + "="):
            value = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return value, rest


def installed() -> list[str]:
    """The default frameworks whose packages are installed (one line for each left out, as a run says)."""
    from adapters import missing_packages

    out = []
    for fw in DEFAULT:
        gone = missing_packages(fw)
        if gone:
            print(f"bench: {fw}: skipped, {', '.join(gone)} not installed", flush=True)
        else:
            out.append(fw)
    return out


def run_part(cmd: list[str]) -> tuple[int, int]:
    """Run one part; its exit status and the peak resident set of its process tree (sampled)."""
    proc = subprocess.Popen(cmd, cwd=ROOT)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_S):
            peak[0] = max(peak[0], memory.descendants_rss_bytes(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    done.set()
    sampler.join()
    return rc, peak[0]


def main(argv: list[str]) -> int:
    results, rest = _option(argv, "--results", "results/bench.json")
    report, rest = _option(rest, "--report", "results/bench.html")
    named, rest = _option(rest, "--frameworks", None)
    # ``--frameworks=`` (empty) with ``--adapter=...``: one part, the external adapters alone
    frameworks = [f.strip() for f in named.split(",") if f.strip()] or [""] if named is not None else installed()
    out = Path(results)
    parts_dir = out.parent / "bench-parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    docs, peaks, worst = {}, {}, 0
    for fw in frameworks:
        part = parts_dir / f"bench.{fw or 'adapters'}.json"
        part.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "suites/test_benchmarks.py",
            "--bench",
            "--benchmark-only",
            f"--frameworks={fw}",
            f"--results={part}",
            *rest,
        ]
        name = fw or "adapters"
        print(f"bench: {name}: {' '.join(cmd[1:])}", flush=True)
        rc, peak = run_part(cmd)
        print(f"bench: {name}: exit {rc}, peak memory of its process tree {peak / 2**30:.2f} GiB (sampled)", flush=True)
        worst = max(worst, rc)
        try:
            docs[name], peaks[name] = load(part), peak
        except ResultsError as e:  # the part wrote nothing (no such framework, a crash): the others still count
            print(f"bench: {name}: no results ({e})", file=sys.stderr)
    if not docs:  # e.g. --collect-only; a part that failed has said so and set the status
        print("bench: no part wrote results; nothing to merge", file=sys.stderr)
        return worst
    doc = merge(docs, peaks, METHOD)
    out.write_text(dumps(doc))
    mem = doc.benchmarks.memory if doc.benchmarks else None
    if mem:
        print(f"bench: the sweep's peak memory {(mem['sweep_peak_bytes'] or 0) / 2**30:.2f} GiB ({METHOD})")
    print(f"bench: results {out}", flush=True)
    if report:
        built = subprocess.run([sys.executable, "-m", "reports", "build", str(out), "-o", report], cwd=ROOT)
        worst = max(worst, built.returncode)
    return worst


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
