"""The report's interactive charts: plain data specs here, drawn in the page by uPlot (inlined).

Each chart is built from results records only: a shared x array and one y array per series (null
where a series has no point), the form uPlot draws directly. Hovering shows every series' value at
the cursor in the legend; clicking a legend entry hides or shows that series. uPlot (51 KB, MIT) is
vendored under ``reports/vendor/uplot`` so the page opens offline (see the README there).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from xentcheck.problem import DTYPES as DTYPE_ORDER
from xentcheck.records import Results, StabilityRecord

VENDOR = Path(__file__).with_name("vendor") / "uplot"
#: where the charts draw errors of 0 (floor) and non-finite results (ceiling), in tolerance units
FLOOR, CEILING = 1e-3, 1e6
#: one line style per framework, so series that share a colour stay apart
DASHES = {"numpy": [2, 3], "torch": [], "tensorflow": [8, 4], "jax": [1, 2]}
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#e6550d",
    "#31a354",
    "#843c39",
    "#7b4173",
    "#637939",
    "#3182bd",
    "#fd8d3c",
    "#74c476",
    "#de9ed6",
)


def library() -> dict:
    """uPlot's script and stylesheet, to inline in the page."""
    return {"js": (VENDOR / "uPlot.iife.min.js").read_text(), "css": (VENDOR / "uPlot.min.css").read_text()}


def _y(units, status: str) -> float:
    if status in ("inf", "nan", "error") or not isinstance(units, (int, float)):
        return CEILING
    return min(max(float(units), FLOOR), CEILING)


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, (int, float)) else str(v)


def _log(v: float) -> float:
    return round(math.log10(v), 6)


def _aligned(series: list[dict]) -> tuple[list[float], list[dict]]:
    """A shared, sorted x array and each series' y (and note) on it, None where it has no point.
    The points' x keys are already log10; y is taken to log10 here: the page draws both on linear
    scales labelled in decades (uPlot's own log scale cannot split ranges reaching the subnormals)."""
    xs = sorted({x for s in series for x in s["points"]})
    out = []
    for s in series:
        pts = s.pop("points")
        s["y"] = [_log(pts[x][0]) if x in pts else None for x in xs]
        s["note"] = [pts[x][1] if x in pts else None for x in xs]
        out.append(s)
    return xs, out


def _style(i: int, framework: str) -> dict:
    return {"color": PALETTE[i % len(PALETTE)], "dash": DASHES.get(framework, [])}


def _stability_chart(records: list[StabilityRecord], check: str, axis: str, dtype: str, x_label: str) -> dict:
    positives = [p.x for r in records for p in r.points if p.x > 0]
    zero_at = _log(min(positives)) - 1 if positives else 0.0  # log10 of where exactly 0 is drawn
    if any(p.x == 0 for r in records for p in r.points):
        x_label += "; exactly 0 is drawn one decade left of the smallest point"
    series = []
    for i, r in enumerate(sorted(records, key=lambda r: (r.framework, r.run, r.binding))):
        pts = {}
        for p in r.points:
            status = getattr(p, f"{check}_status")
            if status is None:
                continue
            x = _log(p.x) if p.x > 0 else zero_at
            units = getattr(p, f"{check}_units")
            note = f"{_num(units)} tol ({status})"
            if check == "value":
                note += f"; value {_num(p.value)}, exact {_num(p.reference)}"
            pts[x] = (_y(units, status), note)
        if pts:
            series.append({"label": f"{r.run or r.framework}: {r.binding}", "points": pts, **_style(i, r.framework)})
    xs, series = _aligned(series)
    return {
        "id": f"stability-{axis}-{dtype}-{check}",
        "tab": f"{dtype} {'loss' if check == 'value' else 'gradient'}",
        "title": f"{axis.replace('_', ' ')}: {'loss' if check == 'value' else 'gradient'} error, {dtype}",
        "x_label": x_label,
        "y_label": "error / tolerance bound",
        "x": xs,
        "series": series,
        "bound": 0.0,
        "y_range": [_log(FLOOR) - 0.3, _log(CEILING) + 0.5],
    }


def stability_charts(docs: list[Results]) -> list[dict]:
    """One group per axis, with one chart per dtype and check (value, gradient)."""
    by_axis: dict = defaultdict(lambda: defaultdict(list))
    for d in docs:
        for r in d.stability:
            if r.outcome == "ok":
                by_axis[r.axis][r.dtype].append(r)
    groups = []
    for axis, by_dtype in sorted(by_axis.items()):
        label = next(iter(by_dtype.values()))[0].label
        charts = [
            _stability_chart(by_dtype[dt], check, axis, dt, label)
            for dt in sorted(by_dtype, key=lambda d: DTYPE_ORDER.index(d) if d in DTYPE_ORDER else 9)
            for check in ("value", "grad")
        ]
        groups.append({"axis": axis, "label": label, "charts": charts, "first": _first_failures(by_dtype)})
    return groups


def _first_failures(by_dtype: dict) -> list[dict]:
    """Per binding and dtype: the first point (in axis order) where loss or gradient goes wrong."""
    rows = []
    for dt, recs in by_dtype.items():
        for r in recs:
            row = {"framework": r.framework, "run": r.run, "binding": r.binding, "dtype": dt, "points": len(r.points)}
            for check in ("value", "grad"):
                p = next((p for p in r.points if getattr(p, f"{check}_status") not in (None, "ok", "documented")), None)
                row[check] = None if p is None else {"x": p.x, "status": getattr(p, f"{check}_status")}
            rows.append(row)
    return sorted(
        rows,
        key=lambda r: (
            r["value"] is None and r["grad"] is None,
            r["framework"],
            r["binding"],
            DTYPE_ORDER.index(r["dtype"]) if r["dtype"] in DTYPE_ORDER else 9,
        ),
    )


def speed_charts(speed: dict | None) -> list[dict]:
    """Median time against size as a multiple of the floor, one chart per pass (forward, forward+backward)."""
    if not speed or not speed["rows"]:
        return []
    size_of = {s: math.prod(int(v) for v in s.split("x")) for s in speed["sizes"]}
    charts = []
    for pass_ in sorted({r["pass"] for r in speed["rows"]}):
        series = []
        for i, r in enumerate(r for r in speed["rows"] if r["pass"] == pass_):
            pts = {
                _log(size_of[s]): (c["floor_multiple"], f"{c['median_s'] * 1e3:.4g} ms at {s}, {c['gbps']:.1f} GB/s")
                for s, c in r["cells"].items()
                if "median_s" in c
            }
            if pts:
                on = f", {r['device']}" if len({row["device"] for row in speed["rows"]}) > 1 else ""
                series.append(
                    {
                        "label": f"{r['framework']}: {r['binding']} ({r['mode']}, {r['dtype']}{on})",
                        "points": pts,
                        "color": PALETTE[i % len(PALETTE)],
                        "dash": [6, 4] if r["mode"] == "compiled" else [],
                    }
                )
        xs, series = _aligned(series)
        if series:
            charts.append(
                {
                    "id": f"speed-{pass_}",
                    "tab": pass_,
                    "title": f"time per call, {pass_}",
                    "x_label": "logits per call (batch x classes)",
                    "y_label": "median time / physical floor",
                    "x": xs,
                    "series": series,
                    "bound": None,
                    "y_range": None,
                }
            )
    return charts
