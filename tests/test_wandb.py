"""The Weights & Biases export round-trips offline: one run per results file, read back from disk."""

import json
import os
import subprocess
import sys

import pytest

from xentcheck import stability
from xentcheck.checks import Judge
from xentcheck.expectations import Registry

from .fake_adapter import HONEST
from .runs import ROOT
from .test_results import _doc

wandb = (
    pytest.importorskip("wandb", reason="the W&B export needs the wandb extra (./run installs it)")
    if os.environ.get("CI") != "true"
    else __import__("wandb")
)


def _results(tmp_path):
    doc = _doc()
    axis = stability.BY_NAME["logit_magnitude"]
    doc["stability"] = [Judge(Registry([]), {}).sweep(HONEST, HONEST.bindings()[0], axis, "float32").to_json()]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    return doc, path


def test_a_results_file_becomes_an_offline_wandb_run_that_reads_back(tmp_path):
    from .wandb_log import records

    doc, path = _results(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}  # offline is the default
    r = subprocess.run(
        [sys.executable, "-m", "reports", "wandb", str(path), "--dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (folder,) = [line.split(" to ", 1)[1] for line in r.stdout.splitlines() if line.startswith("W&B run written")]
    assert "offline-run-" in folder
    recs = list(records(next(p for p in (tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))))
    config = {i.key: json.loads(i.value_json) for rec in recs if rec.HasField("run") for i in rec.run.config.update}
    config |= {i.key: json.loads(i.value_json) for rec in recs if rec.HasField("config") for i in rec.config.update}
    assert config["frameworks"] == doc["environment"]["frameworks"] and config["device"] == "cpu"
    summary = {i.key: json.loads(i.value_json) for rec in recs if rec.HasField("summary") for i in rec.summary.update}
    assert summary["outcomes/pass"] == doc["summary"]["pass"] and summary["complete"] is True
    assert "worst_tol_units/fake/value" in summary
    logged = {i.key or i.nested_key[0] for rec in recs if rec.HasField("history") for i in rec.history.item}
    assert "records" in logged and "stability/logit_magnitude/float32_table" in logged
    (table,) = (tmp_path / "wandb").glob("offline-run-*/files/media/table/records_*.table.json")
    rows = json.loads(table.read_text())
    assert {row[0] for row in rows["data"]} == {rec["id"] for rec in doc["records"]}
    artifacts = [rec.artifact for rec in recs if rec.HasField("artifact") and rec.artifact.type == "report"]
    assert [(a.name, [e.path for e in a.manifest.contents]) for a in artifacts] == [
        ("xentcheck-report", ["report.html"])
    ]


def test_without_wandb_the_command_says_how_to_install_it(monkeypatch):
    from reports import wandb_export

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if the extra were not installed
    with pytest.raises(wandb_export.ExportError, match=r"pip install -e '\.\[wandb\]'"):
        wandb_export.export([])


def test_the_run_option_exports_the_run(tmp_path):
    env_dir = tmp_path / "w"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "suites/test_conformance.py",
            "--frameworks=numpy",
            "-k",
            "random_index and float64",
            "--wandb",
            f"--results={tmp_path / 'r.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}, "WANDB_DIR": str(env_dir)},
    )
    assert r.returncode == 0, r.stdout[-2000:]
    assert "xentcheck: W&B run written to " in r.stdout and list(env_dir.glob("wandb/offline-run-*"))
