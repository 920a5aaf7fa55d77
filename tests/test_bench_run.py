"""The benchmark sweep end to end, in subprocesses, on a fake adapter whose calls take a modelled time
on a virtual clock (so nothing here depends on the machine's load): records in the results document
and in pytest-benchmark's own JSON, the speed section of the report, and the two demonstrations of the
comparison: an A/A pair of runs (other noise) flags nothing, and a planted 25% slowdown is flagged as a
regression (exit status 1)."""

import json
import subprocess
import sys

import pytest

from reports.html import expand
from xentcheck.results import load

from .runs import ROOT, pytest_run


def bench_run(tmp_path, name: str, adapter: str, *extra: str):
    res = tmp_path / f"{name}.json"
    r = pytest_run(
        "suites",
        "--frameworks=",
        f"--adapter=tests.fake_adapter:{adapter}",
        "--bench",
        "--benchmark-only",
        "--bench-sizes=32x10,64x100",
        "--bench-time=0.25",
        f"--results={res}",
        "--benchmark-timer=tests.fake_adapter.virtual_time",
        f"--report={tmp_path / name}.html",
        *extra,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return res, r


def reports_diff(old, new):
    return subprocess.run(
        [sys.executable, "-m", "reports", "diff", str(old), str(new)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    a, ra = bench_run(tmp, "a", "TIMED", f"--benchmark-json={tmp / 'pb.json'}")
    b, _ = bench_run(tmp, "b", "TIMED_AGAIN")
    slow, _ = bench_run(tmp, "slow", "TIMED_SLOWER")
    return tmp, a, b, slow, ra


def test_records_floor_and_threads_are_in_the_results(runs):
    tmp, a, _, _, r = runs
    doc = load(a).to_json()  # validates against the schema
    bench = doc["benchmarks"]
    recs = bench["records"]
    assert len(recs) == 4 * 2 * 2 * 2  # bindings x sizes x modes x passes
    ok = [x for x in recs if x["outcome"] == "ok"]
    assert len(ok) == 16 and all(x["mode"] == "eager" for x in ok)
    assert {x["reason"] for x in recs if x["outcome"] == "unsupported"} == {"timed has no compiler"}
    for x in ok:
        st = x["stats"]
        assert st["rounds"] >= 6 and len(x["samples"]) == st["rounds"]
        assert st["stopped"] == "precision" and st["precision"] <= 0.03  # the 3% target, reached
        assert st["ci_low_s"] <= st["median_s"] <= st["ci_high_s"]
        assert x["floor_multiple"] > 1 and x["bytes"] > 0 and x["threads"] == bench["threads"]["threads"]
    fwd = next(x for x in ok if x["binding"] == "timed.1" and x["pass"] == "forward" and x["batch"] == 32)
    assert fwd["stats"]["median_s"] == pytest.approx(0.002, rel=0.05)  # its modelled 2 ms, jitter 5%
    assert bench["floor"]["bandwidth"]["bytes_per_s"] > 0 and bench["floor"]["exp"]["float32"]["exp_per_s"] > 0
    assert "xentcheck: 16 benchmarks timed, 16 unsupported, 0 error" in r.stdout


def test_pytest_benchmark_json_carries_the_same_facts(runs):
    tmp = runs[0]
    pb = json.loads((tmp / "pb.json").read_text())
    infos = [b["extra_info"] for b in pb["benchmarks"]]
    assert len(infos) == 16 and {i["framework"] for i in infos} == {"timed"}
    assert {"binding", "mode", "dtype", "pass", "batch", "classes", "threads"} <= set(infos[0])


def test_report_has_the_speed_section(runs):
    tmp = runs[0]
    html = expand((tmp / "a.html").read_text())
    assert 'id="speed"' in html and "timed.3" in html and "floor" in html and "GB/s" in html
    assert "until the 95% interval of the median" in html and "timing stopped: 16 at the target precision" in html
    assert "8 configurations not timed" in html  # 4 bindings x 2 passes, compiled (sizes folded)


def test_aa_runs_flag_nothing(runs):
    _, a, b, _, _ = runs
    r = reports_diff(a, b)
    assert r.returncode == 0, r.stdout
    assert "16 benchmarks compared: 0 slower, 0 faster" in r.stdout


def test_planted_slowdown_is_a_regression(runs):
    _, a, _, slow, _ = runs
    r = reports_diff(a, slow)
    assert r.returncode == 1, r.stdout
    regressions = [line for line in r.stdout.splitlines() if line.startswith("REGRESSION")]
    assert len(regressions) == 16 and all("slower" in line for line in regressions)
    assert "16 benchmarks compared: 16 slower, 0 faster" in r.stdout


@pytest.mark.parametrize(
    "option, message",
    [
        (
            "--bench-sizes=huge",
            "--bench-sizes: 'huge' is not BATCHxCLASSES (e.g. 4096x32000, classes >= 2) nor one of quick, full, llm",
        ),
        ("--bench-precision=2", "--bench-precision: give a fraction between 0 and 1, e.g. 0.03"),
        ("--bench-max-call=-1", "--bench-max-call: give seconds (0 times every configuration in full), e.g. 0.5"),
    ],
)
def test_bad_bench_option_is_one_line(option, message):
    r = pytest_run("suites", "--frameworks=", "--bench", option)
    assert r.returncode == 4
    assert [line for line in r.stderr.splitlines() if line.strip()] == [f"ERROR: {message}"]


def test_without_bench_nothing_is_timed(tmp_path):
    res = tmp_path / "r.json"
    r = pytest_run(
        "suites/test_benchmarks.py", "--frameworks=", "--adapter=tests.fake_adapter:TIMED", f"--results={res}", "-rs"
    )
    assert r.returncode == 0 and "benchmarks run only with --bench" in r.stdout
    assert not res.exists()


def test_a_raising_binding_is_an_error_record_and_a_failed_test(tmp_path):
    res = tmp_path / "r.json"
    r = pytest_run(
        "suites/test_benchmarks.py",
        "--frameworks=",
        "--adapter=tests.fake_adapter:TIMED_FAILING",
        "--bench",
        "--benchmark-only",
        "--bench-sizes=32x10",
        "--bench-modes=eager",
        "--bench-time=0.05",
        f"--results={res}",
        "--benchmark-timer=tests.fake_adapter.virtual_time",
    )
    assert r.returncode == 1, r.stdout[-2000:]
    assert "error: RuntimeError: kernel launch failed" in r.stdout
    errors = [x for x in load(res).to_json()["benchmarks"]["records"] if x["outcome"] == "error"]
    assert len(errors) == 2 and {x["binding"] for x in errors} == {"timed.2"}  # forward, forward+backward
