"""The speed section of the report: benchmark records reshaped into tables (no framework imported).

Times are shown as medians with their 95% interval, as multiples of the floor measured in the same
run, as achieved GB/s, with compile time apart; the adapter-overhead table shows the ratio of time
through the adapter to the hand-written native call, timed alternately in one run.
"""

from __future__ import annotations

from collections import defaultdict

from xentcheck.records import BenchRecord, Results

#: the adapter's overhead must stay within this at memory-bound sizes
OVERHEAD_LIMIT = 1.05


def _size(r: BenchRecord) -> str:
    if r.hidden is not None:
        return f"{r.batch}x{r.hidden}x{r.classes}"
    return f"{r.batch}x{r.classes}"


def linear_row(r: BenchRecord) -> dict:
    """One fused linear + cross-entropy benchmark as the report's row: time against its FLOP floor, peak
    memory against its memory floor (a timed record; an error keeps its reason)."""
    row = {
        "framework": r.framework,
        "binding": r.binding,
        "device": r.device,
        "dtype": r.dtype,
        "pass": r.pass_,
        "size": _size(r),
        "n": r.batch,
        "d": r.hidden,
        "v": r.classes,
    }
    if r.outcome == "error":
        return {**row, "error": r.reason}
    lin = r.linear or {}
    return {
        **row,
        "median_s": r.stats["median_s"],
        "ci": _interval(r.stats),
        "stopped": r.stats.get("stopped"),
        **{
            k: lin.get(k)
            for k in (
                "flops",
                "floor_s",
                "floor_multiple",
                "matmul_flop_per_s",
                "memory_floor_bytes",
                "logits_bytes",
                "peak_bytes",
                "peak_over_floor",
                "peak_method",
                "rss_peak_bytes",
                "rss_over_floor",
            )
        },
    }


def speed_view(docs: list[Results]) -> dict | None:
    """Tables for the template, or None when no document has benchmarks."""
    runs = [d.benchmarks for d in docs if d.benchmarks]
    if not runs:
        return None
    recs = [r for b in runs for r in b.records]
    linear = [linear_row(r) for r in recs if r.hidden is not None and r.outcome in ("ok", "error")]
    linear.sort(key=lambda r: (r["device"], r["n"] * r["d"] * r["v"], r["size"], r["dtype"], r["pass"], r["binding"]))
    recs_by_size = [r for r in recs if r.hidden is None]
    # each device's own cache tells a cache-resident size from a memory-bound one (CPU and GPU runs merge)
    cache = {b.floor.get("device", "cpu"): b.floor.get("last_level_cache_bytes") for b in runs if b.floor}
    llc = cache.get("cpu", next(iter(cache.values()), None))
    sizes = sorted({(r.batch, r.classes) for r in recs_by_size}, key=lambda s: s[0] * s[1])
    size_names = [f"{b}x{c}" for b, c in sizes]
    rows: dict = {}
    once: list[dict] = []
    stops: dict[str, int] = defaultdict(int)
    for r in recs:
        key = (r.framework, r.binding, r.device, r.mode, r.dtype, r.pass_)
        row = rows.setdefault(
            key,
            {
                "framework": r.framework,
                "binding": r.binding,
                "device": r.device,
                "mode": r.mode,
                "dtype": r.dtype,
                "pass": r.pass_,
                "cells": {},
                "compile_s": [],
                "unsupported": None,
            },
        )
        if r.outcome == "unsupported":
            row["unsupported"] = r.reason
            continue
        if r.hidden is not None:  # linear_ce: a table of its own (``linear``), at sizes of its own
            continue
        if r.outcome == "error":
            row["cells"][_size(r)] = {"error": r.reason}
            continue
        row["cells"][_size(r)] = {
            "median_s": r.stats["median_s"],
            "iqr_s": r.stats["iqr_s"],
            "ci": _interval(r.stats),
            "floor_multiple": r.floor_multiple,
            "gbps": r.gbps,
            "peak_bytes": r.peak_bytes,
            "rounds": r.stats["rounds"],
            "stopped": r.stats.get("stopped"),
        }
        if r.stats.get("stopped"):
            stops[r.stats["stopped"]] += 1
        if r.stats.get("stopped") == "max-call":
            once.append(
                {
                    "framework": r.framework,
                    "binding": r.binding,
                    "size": _size(r),
                    "mode": r.mode,
                    "pass": r.pass_,
                    "dtype": r.dtype,
                    "call_s": r.stats["median_s"],
                }
            )
        if r.compile_s is not None:
            row["compile_s"].append(r.compile_s)
    timed = [r for r in rows.values() if r["cells"]]
    unsupported = [r for r in rows.values() if not r["cells"] and r["unsupported"]]
    timed.sort(key=lambda r: (r["framework"], r["binding"], r["device"], r["dtype"], r["pass"], r["mode"]))
    overhead = []
    for r in recs:
        if r.overhead:
            device_cache = cache.get(r.device)
            memory_bound = device_cache is not None and r.batch * r.classes * 4 > device_cache
            ratio = r.overhead["ratio"]
            overhead.append(
                {
                    "framework": r.framework,
                    "binding": r.binding,
                    "device": r.device,
                    "size": _size(r),
                    "pass": r.pass_,
                    "dtype": r.dtype,
                    "ratio": ratio,
                    "adapter_s": r.overhead["adapter_median_s"],
                    "bare_s": r.overhead["bare_median_s"],
                    "memory_bound": memory_bound,
                    "over": memory_bound and ratio > OVERHEAD_LIMIT,
                }
            )
    overhead.sort(key=lambda o: (o["framework"], o["pass"], o["size"]))
    counts = defaultdict(int)
    for r in recs:
        counts[r.outcome] += 1
    once.sort(key=lambda o: -o["call_s"])
    return {
        "runs": runs,
        "sizes": size_names,
        "rows": timed,
        "unsupported": unsupported,
        "overhead": overhead,
        "counts": dict(counts),
        "limit": OVERHEAD_LIMIT,
        "llc": llc,
        "once": once,
        "stops": dict(stops),
        "linear": linear,
        "linear_methods": {
            r.linear["peak_method"]: r.linear.get("peak_method_text", "")
            for r in recs
            if r.linear and r.linear.get("peak_method")
        },
    }


def _interval(st: dict) -> tuple[float, float] | None:
    """The median's 95% interval (None when timed in fewer than 6 rounds, or in an older file)."""
    lo, hi = st.get("ci_low_s"), st.get("ci_high_s")
    return (lo, hi) if lo is not None and hi is not None else None
