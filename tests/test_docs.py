"""The docs tell one story: every command shown in README.md, docs/ and cases/README.md runs, and the
op list they show is the code's.

Each command in a ```sh block is run. An expensive one is narrowed but still run: a conformance,
test or benchmark run collects its checks (``--collect-only``) with the framework-free fake adapter in
place of the frameworks it names (tests of the harness run without them), so its options, paths and
case files are all read and checked; ``./run matrix`` and ``./run upgrade`` show their
usage and their tox environments must exist; a line with placeholders (``[OUT_DIR]``, ``NEW``) or that
rewrites the set-up runs its programs' ``--help``. The commands of cases/README.md run from a folder
holding the ``mycases`` its own blocks create, as a reader would (``./run`` takes paths from there).
A command no rule knows fails the test: add a rule for it.
"""

import concurrent.futures
import os
import re
import shlex
import subprocess
import sys

import pytest

from xentcheck import oplist

from .runs import ROOT

#: the commands run together in the first test's set-up (about 20 s of CPU; a loaded machine takes longer)
pytestmark = pytest.mark.timeout(600)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "cases" / "README.md"]
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def shown_commands() -> list[tuple[str, str]]:
    """(file, command) for each command line of each ```sh block, its trailing comment dropped."""
    out = []
    for path in DOCS:
        for lang, body in _BLOCK.findall(path.read_text()):
            if lang != "sh":
                continue
            for line in body.splitlines():
                cmd = re.sub(r"\s+#.*$", "", line).strip()
                if cmd and not cmd.startswith("#"):
                    out.append((str(path.relative_to(ROOT)), cmd))
    return out


def _framework_free(args: list[str]) -> list[str]:
    """The arguments with the built-in frameworks left out (``--frameworks=``) and, where the command
    names no adapter of its own, the framework-free fake adapter in their place."""
    out = [("--frameworks=" if a.startswith("--frameworks=") else a) for a in args]
    if not any(a.startswith("--frameworks=") for a in out):
        out.append("--frameworks=")
    if not any(a.startswith("--adapter") for a in out):
        out.append("--adapter=tests.fake_adapter:HONEST")
    return out


def plan(cmd: str) -> tuple[list[list[str]], str]:
    """How a shown command runs here: the argv lists to run, and what the run must show (a regex)."""
    if cmd.startswith(("./run conformance", "./run bench", "./run tests")):
        args = shlex.split(cmd)
        collect = [str(ROOT / "run"), args[1], *_framework_free(args[2:]), "--collect-only", "-q"]
        return [collect], r"suites/test_\w+\.py: [1-9]"
    if cmd.startswith("./run fuzz"):  # a campaign runs until stopped: its usage, without setting anything up
        return [[str(ROOT / "run"), "fuzz", "--help"]], r"fuzz \[OPTS\] \[-- ARGS\]"
    if cmd.startswith(("./run matrix", "./run upgrade")):
        args = shlex.split(cmd)
        return [[str(ROOT / "run"), args[1], "--help"], ["TOX", *args[2:]]], r"usage: ./run COMMAND"
    if cmd.startswith("python -m reports show "):
        return [[sys.executable, *shlex.split(cmd)[1:]]], r"expected loss, exact"
    if cmd.startswith("python -m reports wandb"):
        return [[sys.executable, "-m", "reports", "wandb", "--help"]], r"usage: python -m reports wandb"
    if cmd.startswith("scripts/gpu-check.sh"):
        return [["bash", str(ROOT / "scripts" / "gpu-check.sh"), "--help"]], r"scripts/gpu-check.sh \[OUT_DIR\]"
    if cmd.startswith("python3.11 -m venv"):  # the pin procedure: placeholders (NEW, ...), it rebuilds a venv
        return [
            [sys.executable, "-m", "venv", "--help"],
            [sys.executable, "-m", "pip", "install", "--help"],
        ], r"pip install \[options\]"
    if cmd.startswith("/tmp/pin/bin/pip freeze"):  # it rewrites constraints/ci.txt
        return [[sys.executable, "-m", "pip", "freeze", "--help"]], r"--exclude-editable"
    return [], ""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Every shown command, run (two at a time) from a reader's folder: (exit codes, output) per command."""
    folder = tmp_path_factory.mktemp("reader")
    cases_readme = (ROOT / "cases" / "README.md").read_text()
    (folder / "mycases").mkdir()
    for lang, body in _BLOCK.findall(cases_readme):  # the blocks that create mycases/, as a reader would
        if lang == "python":
            subprocess.run([sys.executable, "-c", body], cwd=folder, check=True)
        elif lang == "toml" and body.startswith("# mycases/"):
            (folder / body.splitlines()[0][2:].strip()).write_text(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    tox = ROOT / ".venv" / "bin" / "tox"
    envs = (
        subprocess.run([str(tox), "-a"], cwd=ROOT, capture_output=True, text=True, env=env).stdout.split()
        if tox.exists()
        else None
    )

    def run_one(cmd: str) -> tuple[list[int], str]:
        argvs, _ = plan(cmd)
        codes, text = [], ""
        for argv in argvs:
            if argv[0] == "TOX":
                missing = [e for e in argv[1:] if envs is not None and e not in envs]
                codes.append(1 if missing else 0)
                text += f"tox environments missing: {missing}\n" if missing else ""
                continue
            r = subprocess.run(argv, cwd=folder, capture_output=True, text=True, env=env, timeout=300)
            codes.append(r.returncode)
            text += r.stdout + r.stderr
        return codes, text

    commands = sorted({cmd for _, cmd in shown_commands()})
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        return dict(zip(commands, pool.map(run_one, commands), strict=True))


@pytest.mark.parametrize("where, cmd", shown_commands(), ids=[f"{w}: {c}" for w, c in shown_commands()])
def test_every_command_shown_in_the_docs_runs(runs, where, cmd):
    argvs, shows = plan(cmd)
    assert argvs, f"{where}: no rule runs {cmd!r}: add one to tests/test_docs.py:plan"
    codes, text = runs[cmd]
    assert codes and all(c == 0 for c in codes), f"{where}: {cmd!r} exited {codes}:\n{text[-3000:]}"
    assert re.search(shows, text), f"{where}: {cmd!r} did not show {shows!r}:\n{text[-3000:]}"


def test_the_docs_tell_one_way_to_run_the_suite():
    """The README's way (./run); a bare `pytest suites` picks up whatever pytest is on PATH."""
    bare = [(w, c) for w, c in shown_commands() if c.startswith(("pytest", "python -m pytest"))]
    assert bare == []


def test_the_op_list_in_the_docs_is_the_code_s():
    for name in oplist.DOCS:
        text = (ROOT / name).read_text()
        block = re.search(r"<!-- ops:begin -->\n(.*?)<!-- ops:end -->", text, re.S)
        assert block, f"{name} has no <!-- ops:begin --> block"
        assert block[1] == oplist.markdown(), (
            f"{name}: the op list differs from the code: python -m xentcheck.oplist --write"
        )
