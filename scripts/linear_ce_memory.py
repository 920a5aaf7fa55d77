"""Peak memory and time of the linear_ce bindings (fused linear + cross-entropy), forward + backward.

    python scripts/linear_ce_memory.py --n 4096 --d 1024 --v 32000 --dtype float32 [--device cpu|cuda]
        [--bindings NAME,...] [--repeats 3] [--out FILE.json]

Each binding runs in a process of its own (a crash or an out-of-memory costs that binding only), on
the same seeded X [N, D], W [V, D] and targets, once to warm up and then ``--repeats`` times; the
median wall time is reported beside the floor ``6 N D V`` FLOPs (the three
matmuls that form the logits, dX and dW, 2 N D V each).

Peak memory, and how it is measured:
  * cuda: ``torch.cuda.max_memory_allocated`` over one forward + backward, minus what was allocated
    before (the inputs): the caching allocator's own count, exact for tensors torch allocates.
  * cpu: the process's peak resident set during the timed calls (Linux's VmHWM, reset through
    /proc/self/clear_refs just before them) minus the resident set at that moment, with the inputs
    built and one warm-up call done. Limits: page
    granularity, the allocator may keep freed blocks, memory a first call maps (libraries, compiled
    code) is excluded by the warm-up, and a buffer reused from the warm-up is not counted again, so the
    CPU figure is a lower bound of the binding's transient memory.

The memory floor is what any implementation must hold: the inputs and their gradients, X, W (and b),
dX, dW in the input dtype, without the N x V logits; the report gives peak / floor beside the size of
the N x V logits in the input dtype (what an unfused implementation materialises at least once).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _bytes(dtype: str) -> int:
    return {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}[dtype]


def run_one(args) -> dict:
    """Measure one binding in this process."""
    import numpy as np
    import torch

    from adapters import pytorch_linear_ce as lce
    from xentcheck.problem import Problem

    binding = next(b for b in lce.bindings() if b.name == args.binding)
    rng = np.random.default_rng(0)
    dt = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    x = torch.as_tensor(rng.standard_normal((args.n, args.d), dtype=np.float32), dtype=dt, device=args.device)
    w = torch.as_tensor(
        rng.standard_normal((args.v, args.d), dtype=np.float32) / np.sqrt(args.d), dtype=dt, device=args.device
    )
    t = torch.as_tensor(rng.integers(0, args.v, args.n), device=args.device)
    # the problem carries W for the binding's step; its arrays are converted once, here
    problem = Problem(
        case="bench",
        op="linear_ce",
        dtype=args.dtype,
        x=np.zeros((1, 1)),
        target=np.zeros(1),
        target_kind="index",
        reduction="mean",
        weight_matrix=np.zeros((1, 1)),
    )
    from xentcheck.protocol import Inputs

    inp = Inputs(problem, t)

    def call():
        xl = x.detach().requires_grad_(True)
        wl = torch.nn.Parameter(w)
        loss = lce.LOSSES[binding.name](xl, wl, None, t, inp)
        gx, gw = torch.autograd.grad(loss, (xl, wl))
        if args.device == "cuda":
            torch.cuda.synchronize()
        return loss, gx, gw

    call()  # warm-up: compilation, first-touch of libraries
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        before = _rss_now()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0)
        del out
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() - before
        method = "torch.cuda.max_memory_allocated minus the inputs"
    else:
        peak = _peak_rss() - before
        method = "peak RSS (VmHWM, reset before the timed calls) minus RSS before them, after a warm-up"
    return {
        "binding": args.binding,
        "median_s": statistics.median(times),
        "times_s": times,
        "peak_bytes": int(max(peak, 0)),
        "method": method,
    }


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the process's peak resident set (VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--v", type=int, default=32000)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bindings", default="")
    ap.add_argument("--binding", help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.binding:
        print(json.dumps(run_one(args)))
        return 0
    sys.path.insert(0, os.getcwd())
    from adapters import pytorch_linear_ce as lce

    names = [b.name for b in lce.bindings()]
    if args.bindings:
        names = [n for n in names if n in args.bindings.split(",")]
    size = _bytes(args.dtype)
    inputs = (args.n * args.d + args.v * args.d) * size
    floor = 2 * inputs
    rows = []
    for name in names:
        cmd = [
            sys.executable,
            __file__,
            "--binding",
            name,
            "--n",
            str(args.n),
            "--d",
            str(args.d),
            "--v",
            str(args.v),
            "--dtype",
            args.dtype,
            "--device",
            args.device,
            "--repeats",
            str(args.repeats),
        ]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            row = (
                json.loads(p.stdout.strip().splitlines()[-1])
                if p.returncode == 0
                else {"binding": name, "error": (p.stderr.strip().splitlines() or ["?"])[-1][:300]}
            )
        except subprocess.TimeoutExpired:
            row = {"binding": name, "error": f"over {args.timeout} s"}
        if "peak_bytes" in row:
            row["peak_over_floor"] = (inputs + row["peak_bytes"]) / floor  # the floor counts the inputs too
        rows.append(row)
        print(json.dumps(row), flush=True)
    doc = {
        "n": args.n,
        "d": args.d,
        "v": args.v,
        "dtype": args.dtype,
        "device": args.device,
        "floor_bytes": floor,
        "logits_bytes": args.n * args.v * size,
        "flops": 6 * args.n * args.d * args.v,
        "rows": rows,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
