"""`./run matrix` runs tox environments in parallel and merges them into one report: the same steps the
CI workflow (.github/workflows/matrix.yml) runs across machines."""

import json
import subprocess

import pytest

from reports.html import expand

from .runs import ROOT


def test_the_workflow_runs_environments_that_exist_and_merges_them_with_reports_build():
    import yaml

    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "matrix.yml").read_text())
    tox_envs = (
        set(
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "tox"), "-a"], cwd=ROOT, capture_output=True, text=True
            ).stdout.split()
        )
        if (ROOT / ".venv" / "bin" / "tox").exists()
        else None
    )
    envs = flow["jobs"]["env"]["strategy"]["matrix"]["env"]
    if tox_envs is not None:
        assert set(envs) <= tox_envs
    steps = " ".join(str(s.get("run", "")) for s in flow["jobs"]["report"]["steps"])
    assert "python -m reports build results/*.json" in steps
    assert "scripts/gpu-check.sh" in " ".join(str(s.get("run", "")) for s in flow["jobs"]["gpu"]["steps"])


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "tox").exists(), reason="./run sets up .venv with tox")
def test_run_matrix_merges_two_environments_into_one_report():
    r = subprocess.run(
        ["./run", "matrix", "numpy", "torch", "--", "-k", "random_index", "-p", "no:randomly"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    for env, framework in (("numpy", "numpy"), ("torch", "torch")):
        doc = json.loads((ROOT / "results" / f"{env}.json").read_text())
        assert set(doc["environment"]["frameworks"]) == {framework} and doc["complete"] is True
    html = expand((ROOT / "results" / "matrix.html").read_text())
    assert "report written to results/matrix.html" in r.stdout
    assert "F.cross_entropy" in html and "log_softmax" in html  # both environments in one page
