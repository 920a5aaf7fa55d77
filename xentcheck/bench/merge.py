"""One results document from the benchmark sweep's parts: ``./run bench`` times each framework in a
process of its own, one after another (a framework's allocator keeps what it once held: TensorFlow
holds 3.8 GB after a few configurations at 4096x32000, released only when its process ends), and
this module joins the parts' documents.

The floor must be the best the machine was seen to do, but each part measured it with its own
framework's exp kernels (and NumPy's): the merged floor takes the best rate of every part, and every
record's floor multiple is computed again against it. The sweep's peak memory is the largest part's
(they ran one after another), each part's own figure kept beside it.
"""

from __future__ import annotations

from dataclasses import replace

from ..records import BenchRecord, BenchSection, Results
from .floor import floor_seconds
from .sweep import exps_needed


def best_floor(floors: list[dict]) -> dict | None:
    """The best bandwidth and, per dtype, the best exp throughput any part measured."""
    floors = [f for f in floors if f]
    if not floors:
        return None
    out = dict(floors[0])
    out["bandwidth"] = max((f["bandwidth"] for f in floors), key=lambda b: b["bytes_per_s"])
    exps: dict[str, dict] = {}
    for f in floors:
        for dtype, e in f.get("exp", {}).items():
            if e.get("exp_per_s") and (dtype not in exps or e["exp_per_s"] > exps[dtype]["exp_per_s"]):
                exps[dtype] = e
            exps.setdefault(dtype, e)
    out["exp"] = exps
    return out


def refloor(rec: BenchRecord, floor: dict | None) -> BenchRecord:
    """``rec`` with its floor and multiple against ``floor`` (a linear_ce record keeps its own: its
    floor is its framework's matmul rate)."""
    if floor is None or rec.outcome != "ok" or rec.hidden is not None or rec.bytes is None or not rec.stats:
        return rec
    exp = floor["exp"].get(rec.dtype) or floor["exp"].get("float32") or {}
    floor_s, bound = floor_seconds(rec.bytes, exps_needed(rec.batch, rec.classes), floor["bandwidth"], exp)
    return replace(rec, floor_s=floor_s, floor_bound=bound, floor_multiple=rec.stats["median_s"] / floor_s)


def _union(lists: list[list]) -> list:
    out: list = []
    for items in lists:
        out += [x for x in items if x not in out]
    return out


def merge(parts: dict[str, Results], tree_peaks: dict[str, int | None] | None = None, method: str = "") -> Results:
    """One document from the parts (name -> its document, in the order they ran). ``tree_peaks`` are
    the parts' peak resident sets as their parent sampled them (the process and its descendants),
    ``method`` says how."""
    docs = list(parts.values())
    if not docs:
        raise ValueError("no benchmark part to merge")
    first = docs[0]
    environment: dict = {}
    for d in docs:  # the machine's facts from the first part; per-framework tables joined
        for k, v in d.environment.items():
            if isinstance(v, dict) and isinstance(environment.get(k), dict):
                environment[k] = {**environment[k], **v}
            else:
                environment.setdefault(k, v)
    summary: dict = {}
    for d in docs:
        for k, v in d.summary.items():
            summary[k] = summary.get(k, 0) + v if isinstance(v, int) and not isinstance(v, bool) else v
    benches = {name: d.benchmarks for name, d in parts.items() if d.benchmarks is not None}
    benchmarks = None
    if benches:
        sections = list(benches.values())
        floor = best_floor([b.floor for b in sections if b.floor])
        matmul: dict = {}
        for b in sections:
            matmul.update(b.matmul or {})
        peaks = {
            name: {
                "process_peak_bytes": (b.memory or {}).get("process_peak_bytes"),
                "tree_peak_bytes": (tree_peaks or {}).get(name),
            }
            for name, b in benches.items()
        }
        sweep_peak = max((p["tree_peak_bytes"] or p["process_peak_bytes"] or 0 for p in peaks.values()), default=0)
        s0 = sections[0]
        benchmarks = BenchSection(
            threads=s0.threads,
            sizes=_union([b.sizes for b in sections]),
            modes=s0.modes,
            passes=s0.passes,
            dtypes=s0.dtypes,
            budget_s=s0.budget_s,
            floor=floor,
            records=[refloor(r, floor) for b in sections for r in b.records],
            precision=s0.precision,
            max_call_s=s0.max_call_s,
            linear_sizes=_union([b.linear_sizes or [] for b in sections]),
            matmul=matmul or None,
            memory={
                "process_peak_bytes": max((p["process_peak_bytes"] or 0 for p in peaks.values()), default=0) or None,
                "descendants_peak_bytes": max(((b.memory or {}).get("descendants_peak_bytes") or 0) for b in sections),
                "sweep_peak_bytes": sweep_peak or None,
                "method": method or (s0.memory or {}).get("method", ""),
                "parts": peaks,
            },
        )
    harness = None
    hs = [d.harness for d in docs if d.harness]
    if hs:
        frameworks: dict = {}
        for h in hs:
            frameworks.update(h.get("frameworks") or {})
        walls = [h["wall_s"] for h in hs if h.get("wall_s") is not None]
        harness = {
            "time_to_first_check_s": hs[0].get("time_to_first_check_s"),
            "wall_s": sum(walls) if walls else None,
            "peak_rss_bytes": max((h.get("peak_rss_bytes") or 0 for h in hs), default=0) or None,
            "frameworks": frameworks,
        }
    incomplete = next((d.incomplete for d in docs if d.complete is False), None)
    return Results(
        environment=environment,
        summary=summary,
        expectations=first.expectations,
        records=[r for d in docs for r in d.records],
        benchmarks=benchmarks,
        stability=[s for d in docs for s in d.stability],
        schema_version=first.schema_version,
        tool=first.tool,
        complete=False if incomplete is not None else first.complete,
        incomplete=incomplete,
        harness=harness,
    )
