"""Weights & Biases export: one W&B run per results file (offline unless the user configures otherwise).

Each run gets the environment and versions as config, the outcome counts and worst errors as summary,
the records as a W&B Table, the stability sweep as line plots (error in tolerance units against the
axis, one series per binding), and the HTML report as an artifact. Like every report, it reads results
files only. ``wandb`` is an optional extra: ``pip install -e '.[wandb]'``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections import defaultdict
from pathlib import Path

from xentcheck.records import Results

from .history import run_labels
from .html import render

#: the record fields that become the W&B Table's columns
COLUMNS = (
    "id",
    "framework",
    "binding",
    "op",
    "case",
    "category",
    "dtype",
    "mode",
    "device",
    "reduction",
    "check",
    "outcome",
    "expectation",
    "tol_units",
    "max_abs",
    "result_dtype",
)


class ExportError(RuntimeError):
    """The export cannot run; the message is one line saying what to do."""


def _wandb():
    try:
        import wandb
    except ImportError:
        raise ExportError("the W&B export needs the wandb package: pip install -e '.[wandb]'") from None
    return wandb


def _units(v: float | str) -> float | None:
    """A stability point's error for a plot: numbers as they are, inf/NaN as gaps."""
    return v if isinstance(v, (int, float)) and math.isfinite(v) else None


def summary(doc: Results) -> dict:
    """Outcome counts, completeness, and the worst error (tolerance units) per framework and check."""
    out: dict = {f"outcomes/{k}": v for k, v in doc.summary.items()}
    out["complete"] = doc.complete
    worst: dict = defaultdict(float)
    for r in doc.records:
        if r.errors is not None and r.outcome in ("pass", "deviation"):
            key = f"worst_tol_units/{r.framework}/{r.check}"
            worst[key] = max(worst[key], r.errors.tol_units)
    return out | dict(worst)


def export(docs: list[Results], *, project: str = "xentcheck", directory: str | None = None) -> list[str]:
    """Log one run per document; returns each run's local folder. Offline unless WANDB_MODE is set."""
    wandb = _wandb()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    labels = run_labels(docs) if len(docs) > 1 else [docs[0].environment.get("date", "run")]
    out = []
    for doc, label in zip(docs, labels, strict=True):
        env = doc.environment
        config = {k: env.get(k) for k in ("python", "platform", "cpu", "cpu_count", "device", "command", "date")}
        config["frameworks"] = env.get("frameworks", {})
        run = wandb.init(project=project, name=f"xentcheck {label}", dir=directory, config=config, reinit="create_new")
        run.summary.update(summary(doc))
        rows = [
            [
                getattr(r, c) if c not in ("tol_units", "max_abs") else (getattr(r.errors, c) if r.errors else None)
                for c in COLUMNS
            ]
            for r in doc.records
        ]
        run.log({"records": wandb.Table(columns=list(COLUMNS), data=rows)})
        by_plot: dict = defaultdict(list)
        for s in doc.stability:
            if s.outcome == "ok":
                by_plot[(s.axis, s.dtype)].append(s)
        for (axis, dtype), sweeps in sorted(by_plot.items()):
            run.log(
                {
                    f"stability/{axis}/{dtype}": wandb.plot.line_series(
                        xs=[[p.x for p in s.points] for s in sweeps],
                        ys=[[_units(p.value_units) for p in s.points] for s in sweeps],
                        keys=[f"{s.framework}: {s.binding}" for s in sweeps],
                        title=f"{axis}, {dtype}: loss error / bound",
                        xname=sweeps[0].label,
                    )
                }
            )
        with tempfile.TemporaryDirectory() as tmp:
            html = Path(tmp) / "report.html"
            html.write_text(render([doc]))
            artifact = wandb.Artifact("xentcheck-report", type="report")
            artifact.add_file(str(html))
            run.log_artifact(artifact)
            out.append(str(Path(run.dir).parent))
            run.finish()
    return out
