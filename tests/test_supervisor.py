"""The supervising parent (suites/plugin/supervise.py), on real processes: a binding that ends, hangs or
is signalled never decides the run's exit status, and what finished is written, marked incomplete."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.runs import ROOT

SLICE = ("-k", "float64 and none and value and (random_index or tutorial_logits)")


def _cmd(tmp_path, adapter: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:randomly",
        "suites/test_conformance.py",
        "--frameworks=",
        f"--adapter=tests.hostile_adapter:{adapter}",
        *SLICE,
        f"--results={tmp_path / 'r.json'}",
        *extra,
    ]


def _records(tmp_path) -> dict:
    doc = json.loads((tmp_path / "r.json").read_text())
    return doc, {r["id"].split("-")[2]: r for r in doc["records"]}


def test_a_binding_that_exits_with_status_0_fails_the_run_and_keeps_what_finished(tmp_path):
    (tmp_path / "r.json").write_text("the previous run's results")
    r = subprocess.run(_cmd(tmp_path, "EXITING"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 6, r.stdout[-2000:] + r.stderr[-2000:]  # DID_NOT_FINISH, never 0
    assert "xentcheck: DID NOT FINISH: the run's process exited with status 0 before it finished" in r.stderr
    doc, by_case = _records(tmp_path)  # the previous file is replaced by this run's, marked incomplete
    assert doc["complete"] is False and "exited with status 0" in doc["incomplete"]["reason"]
    assert by_case["random_index"]["outcome"] == "pass"
    assert by_case["tutorial_logits"]["outcome"] == "error"
    assert "exited with status 0" in by_case["tutorial_logits"]["reason"]
    assert list(tmp_path.glob("r.json.*.partial.jsonl"))  # the journal is kept


def test_a_hang_in_native_code_is_ended_by_the_timeout_and_recorded(tmp_path):
    r = subprocess.run(
        _cmd(tmp_path, "NATIVE_HANG", "--timeout=1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "XENTCHECK_GRACE_S": "3"},
    )
    assert r.returncode == 6, r.stderr[-2000:]
    doc, by_case = _records(tmp_path)
    assert doc["complete"] is False
    assert by_case["tutorial_logits"]["outcome"] == "error"
    assert "timed out" in by_case["tutorial_logits"]["reason"]


def test_sigterm_ends_a_run_hung_in_native_code_with_results_marked_incomplete(tmp_path):
    run = subprocess.Popen(
        _cmd(tmp_path, "NATIVE_HANG"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "XENTCHECK_GRACE_S": "3"},
    )
    try:
        for _ in range(1200):  # until the hang has begun: its check is the second (a poll, not a timing)
            found = list(tmp_path.glob("r.json.*.partial.jsonl"))
            if found and "random_index" in found[0].read_text():
                break
            time.sleep(0.1)
        time.sleep(0.5)
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)  # the grace is seconds; 60 only bounds a broken test
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2, err[-2000:]
    assert "interrupted by SIGTERM" in err
    doc, by_case = _records(tmp_path)
    assert doc["complete"] is False and "SIGTERM" in doc["incomplete"]["reason"]
    assert by_case["random_index"]["outcome"] == "pass"


def test_sys_exit_in_a_binding_is_named_in_its_record(tmp_path):
    r = subprocess.run(_cmd(tmp_path, "SYS_EXIT"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    _, by_case = _records(tmp_path)
    assert by_case["tutorial_logits"]["outcome"] == "error"
    assert "SystemExit: 3" in by_case["tutorial_logits"]["reason"]


def test_a_binding_that_changes_the_working_folder_does_not_move_the_results(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:randomly",
        "suites/test_conformance.py",
        "--frameworks=",
        "--adapter=tests.hostile_adapter:CHDIR",
        *SLICE,
        "--results=results-c29/r.json",
    ]
    env = {**os.environ, "XC_CHDIR_TO": str(other), "PYTHONPATH": str(ROOT)}
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    try:
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert (ROOT / "results-c29" / "r.json").is_file() and not (other / "results-c29").exists()
    finally:
        import shutil

        shutil.rmtree(ROOT / "results-c29", ignore_errors=True)


def test_an_environment_with_a_set_and_a_nan_is_written_as_plain_json(tmp_path):
    r = subprocess.run(_cmd(tmp_path, "ODD_ENVIRONMENT"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    doc, _ = _records(tmp_path)
    env = doc["environment"]["frameworks"]["oddenv"]
    assert env["flags"] == ["a", "b"] and env["clock"] == "nan"


def test_an_external_adapter_cannot_take_a_builtin_name(tmp_path):
    r = subprocess.run(_cmd(tmp_path, "NAMED_NUMPY"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 4
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "its name 'numpy' is a built-in framework's" in err[0]


def test_two_external_adapters_with_one_name_are_refused(tmp_path):
    r = subprocess.run(
        [*_cmd(tmp_path, "ODD_ENVIRONMENT"), "--adapter=tests.hostile_adapter:ODD_ENVIRONMENT"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 4 and len(err) == 1 and "two adapters are named 'oddenv'" in err[0]


def test_without_the_supervisor_an_exit_0_passes_for_a_finished_run(tmp_path):
    """What --no-supervisor gives up (documented): the process that ends is the one that decides."""
    r = subprocess.run(
        [*_cmd(tmp_path, "EXITING"), "--no-supervisor"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and not (tmp_path / "r.json").exists()


def test_results_to_a_device_are_refused_at_start_up(tmp_path):
    cmd = [c for c in _cmd(tmp_path, "EXITING") if not c.startswith("--results")] + ["--results=/dev/null"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 4 and len(err) == 1 and "not a regular file" in err[0]
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_a_run_selected_by_node_id_says_it_is_a_slice(tmp_path):
    node = "suites/test_conformance.py::test_conformance[oddenv-fake.softmax_ce-random_index-float64-eager]"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            node,
            "--frameworks=",
            "--adapter=tests.hostile_adapter:ODD_ENVIRONMENT",
            f"--results={tmp_path / 'r.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:]
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["environment"]["slice"] == "node ids" and doc["expectations"]["unused"] == []
    assert "the run was a slice (node ids)" in r.stdout


def test_a_binding_killed_by_a_signal_in_a_plain_run_keeps_what_finished(tmp_path):
    cmd = [c.replace("tests.hostile_adapter:X", "tests.fake_adapter:CRASHING") for c in _cmd(tmp_path, "X")]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 6 and "was killed by SIGKILL" in r.stderr, r.stderr[-2000:]
    doc, by_case = _records(tmp_path)
    assert doc["complete"] is False and by_case["random_index"]["outcome"] == "pass"


def test_a_grandchild_holding_the_pipe_open_does_not_keep_the_supervisor_waiting(tmp_path):
    r = subprocess.run(_cmd(tmp_path, "FORKING_EXIT"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 6 and "exited with status 0" in r.stderr


def test_sigterm_to_a_healthy_run_stops_it_through_its_own_handler(tmp_path):
    run = subprocess.Popen(
        _cmd(tmp_path, "SLEEPING"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "XENTCHECK_GRACE_S": "120"},
    )  # a loaded machine is slow
    try:
        for _ in range(1200):  # until the sleep has begun (a poll, not a timing)
            found = list(tmp_path.glob("r.json.*.partial.jsonl"))
            if found and "random_index" in found[0].read_text():
                break
            time.sleep(0.1)
        time.sleep(0.5)
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 2 and "DID NOT FINISH" not in err  # the child wrote its own results in time
    doc, _ = _records(tmp_path)
    assert doc["complete"] is False and doc["incomplete"]["reason"] == "interrupted by SIGTERM"


def test_an_earlier_runs_results_are_marked_stale_when_a_run_ends_before_any_record(tmp_path):
    from tests.test_results import _doc

    previous = _doc()
    (tmp_path / "r.json").write_text(json.dumps(previous))
    r = subprocess.run(_cmd(tmp_path, "EXIT_AT_START"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 6 and "is an earlier run's: kept, marked incomplete (stale)" in r.stderr, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["records"] == previous["records"] and doc["complete"] is False
    assert doc["incomplete"]["reason"].startswith("stale: a later run on this path did not finish")


def test_only_a_run_of_the_suites_has_results_to_salvage(tmp_path):
    from types import SimpleNamespace

    from suites.plugin.supervise import _runs_suites

    def config(*args):
        return SimpleNamespace(
            args=list(args), rootpath=ROOT, getini=lambda name: ["suites"], invocation_params=SimpleNamespace(dir=ROOT)
        )

    assert _runs_suites(config()) and _runs_suites(config("suites/test_conformance.py::test_conformance[x]"))
    assert _runs_suites(config(str(ROOT)))
    assert not _runs_suites(config("tests")) and not _runs_suites(config("tests/test_cases.py"))
