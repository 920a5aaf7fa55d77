"""Faults on a real run: two concurrent runs on one results path, and a run killed outright (SIGKILL)
whose journal survives and is recovered. (Each other fault and bad input of docs/faults.md has its test
beside the code it exercises; that table names them.)"""

import json
import os
import signal
import subprocess
import sys
import time

from .runs import ROOT


def test_a_second_run_is_refused_and_a_killed_run_leaves_a_journal_that_recovers(tmp_path):
    res = tmp_path / "r.json"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:randomly",
        "suites/test_conformance.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:HANGING",
        "-k",
        "float64 and value",
        f"--results={res}",
    ]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal = None
        for _ in range(600):  # until the first run has journalled records and hangs (a poll, not a timing)
            found = list(tmp_path.glob("r.json.*.partial.jsonl"))
            if found and len(found[0].read_text().splitlines()) > 3:
                journal = found[0]
                break
            time.sleep(0.1)
        assert journal is not None, "the first run never journalled a record"
        second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        err = [line for line in second.stderr.splitlines() if line.strip()]
        assert second.returncode == 4 and len(err) == 1
        assert f"another xentcheck run is writing it (pid {first.pid})" in err[0]
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert not res.exists()  # killed outright: no results file, but the journal is there
    out = tmp_path / "recovered.json"
    rec = subprocess.run(
        [sys.executable, "-m", "reports", "recover", str(journal), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert rec.returncode == 0, rec.stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and doc["records"] and doc["incomplete"]["expected"]
    # the lock died with the process: the next run on the path starts
    again = subprocess.run(
        [*cmd[:-4], "--adapter=tests.fake_adapter:HONEST", "-k", "random_index and float64", f"--results={res}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and json.loads(res.read_text())["complete"] is True
