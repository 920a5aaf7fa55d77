"""The supervisor: the process that decides a run's exit status never runs a binding.

``pytest`` forks at its start (``pytest_cmdline_main``): the child runs the session as usual, the parent
waits for it. The child tells the parent, over a pipe, which test it starts and, at the very end, its
exit status. A child that ends without that last word (a kernel called ``os._exit(0)`` or ``exit()``,
a segfault, the OOM killer) cannot pass for a finished run: the parent turns the child's journal into
results marked incomplete, adds an ``error`` record for each check of the test that was running, and exits with
:data:`DID_NOT_FINISH`. The parent also bounds what the child may take:

- a test that runs past pytest-timeout's ``timeout`` by more than :data:`GRACE_S` (15 s; a hang in native code,
  which pytest-timeout's signal cannot interrupt) gets the child killed and is recorded as timed out;
- SIGTERM, SIGINT or SIGHUP reaches the child as SIGTERM (it writes results marked incomplete); a child
  that has not ended :data:`GRACE_S` seconds later is killed and the parent writes the results.

Exit statuses (docs/faults.md): 0 all passed, 1 a check failed or regressed, 2 interrupted, 3 internal
error, 4 a usage or input error, 5 nothing collected, :data:`DID_NOT_FINISH` the run's process ended or
was ended before it finished. ``--no-supervisor`` (or a platform without ``fork``) runs in one process.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from .scheduling import exit_now

#: exit status of a run whose process ended (or was ended) before it finished
DID_NOT_FINISH = 6
#: seconds a hung test may run past pytest-timeout's limit, and a signalled child may take to stop
#: (XENTCHECK_GRACE_S sets another)
GRACE_S = float(os.environ.get("XENTCHECK_GRACE_S", "15"))
_ENV = "XENTCHECK_SUPERVISED"


def add_option(parser: pytest.Parser) -> None:
    parser.getgroup("xentcheck").addoption(
        "--no-supervisor",
        action="store_true",
        default=False,
        help="run the session in this process (no supervising parent: a binding that ends the process with "
        "status 0 then passes for a finished run)",
    )


def enabled(config: pytest.Config) -> bool:
    """Supervise a top-level pytest process that will run tests (not --help, --collect-only, an xdist
    worker, an in-process pytest inside a supervised run, or a platform without fork)."""
    opt = config.option
    if not hasattr(os, "fork") or CHANNEL is not None or hasattr(config, "workerinput"):
        return False
    if os.environ.get(_ENV) == str(os.getppid()):  # pytest.main inside a supervised child's own process
        return False
    if getattr(opt, "no_supervisor", False):  # (an xdist worker has workerinput: its env var is inherited by
        # the pytest processes a test starts, which must be supervised as any other)
        return False
    if any(
        getattr(opt, name, False)
        for name in (
            "help",
            "version",
            "collectonly",
            "showfixtures",
            "markers",
            "fixtures_per_test",
            "usepdb",
            "trace",
        )
    ):
        return False  # nothing runs, or a debugger owns the terminal (its Ctrl-C must not end the run)
    main = Path(sys.argv[0]).name if sys.argv else ""
    return main in ("pytest", "py.test", "__main__.py", "pytest.exe")


class ChildChannel:
    """The child's end of the pipe: one JSON line per event (test started, test finished, run over)."""

    def __init__(self, fd: int, config: pytest.Config) -> None:
        self.fd = fd
        self.config = config  # the supervised run's (a pytest run in-process inside it has another)

    def send(self, **event) -> None:
        try:
            os.write(self.fd, (json.dumps(event, default=str) + "\n").encode())
        except OSError:  # the parent is gone: nothing to tell
            pass

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


#: set in the child after the fork
CHANNEL: ChildChannel | None = None


def fork(config: pytest.Config) -> int | None:
    """Fork; the child returns None (and runs the session), the parent the run's exit status."""
    global CHANNEL
    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _die_with_parent()
        os.environ[_ENV] = str(os.getppid())
        CHANNEL = ChildChannel(w, config)
        return None
    os.close(w)
    return Parent(config, pid, r).wait()


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the supervisor dies (killed outright, it cannot pass it on)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def supervisor_pid() -> int:
    """The pid the user started: the supervisor's in a supervised child, else this process's."""
    return os.getppid() if CHANNEL is not None else os.getpid()


def _timeout(config: pytest.Config) -> float | None:
    """pytest-timeout's per-test limit (None or 0: none)."""
    try:
        value = config.getoption("timeout", None)
        if value is None:
            value = config.getini("timeout")
        return float(value) or None
    except (ValueError, TypeError):
        return None


class Parent:
    """The supervising parent: reads the child's events, forwards signals, enforces the time limits."""

    def __init__(self, config: pytest.Config, pid: int, fd: int) -> None:
        self.config = config
        self.pid = pid
        self.fd = fd
        self.buffer = b""
        self.current: dict | None = None  # the test the child last started and has not finished
        self.started_at = 0.0
        self.final: int | None = None  # the exit status the child reported at its end
        self.signal: str | None = None
        self.killed: str | None = None  # why the parent killed the child
        self.signal_at = 0.0
        self.limit = _timeout(config)
        self.writing = False  # the child has begun writing its results: a signal's grace is longer

    def _on_signal(self, signum, frame) -> None:
        if self.signal is None:
            self.signal = signal.Signals(signum).name
            self.signal_at = time.monotonic()
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def _read(self) -> bool:
        """Read what the child sent; False at end of file."""
        try:
            chunk = os.read(self.fd, 65536)
        except InterruptedError:
            return True
        if not chunk:
            return False
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "start" in event:
                self.current, self.started_at = event, time.monotonic()
            elif "finish" in event:
                self.current = None
            elif "writing" in event:
                self.writing = True
            elif "exitstatus" in event:
                self.final = int(event["exitstatus"])
        return True

    def _kill(self, why: str) -> None:
        self.killed = why
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        status = None
        open_ = True
        while status is None:
            if open_:
                try:
                    ready, _, _ = select.select([self.fd], [], [], 0.2)
                except InterruptedError:
                    ready = []
                if ready:
                    open_ = self._read()
            else:
                time.sleep(0.05)
            done, raw = os.waitpid(self.pid, os.WNOHANG)
            if done:
                status = raw
                break
            now = time.monotonic()
            grace = GRACE_S * (4 if self.writing else 1)  # a large run's report takes a while to write
            if self.killed is None and self.signal and now - self.signal_at > grace:
                self._kill(f"interrupted by {self.signal}; the run did not stop within {grace:g} s and was killed")
            if self.killed is None and self.limit and self.current and now - self.started_at > self.limit + GRACE_S:
                self._kill(
                    f"timed out: the test ran past --timeout={self.limit:g} s by more than "
                    f"{GRACE_S:g} s (a hang in native code); the run was ended"
                )
        while open_:  # what the child sent just before it ended
            ready, _, _ = select.select([self.fd], [], [], 0)
            if not ready:
                break
            open_ = self._read()
        os.close(self.fd)
        return self.verdict(status)

    def verdict(self, status: int) -> int:
        """The run's exit status; a child that did not report its end did not finish."""
        if self.final is not None and self.killed is None:
            return self.final
        if os.WIFSIGNALED(status):
            how = f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with status {os.WEXITSTATUS(status)}"
        reason = self.killed or f"the run's process {how} before it finished"
        during = self.current["start"] if self.current else None
        lines = [f"xentcheck: DID NOT FINISH: {reason}" + (f" (during {during})" if during else "")]
        lines += salvage(self.config, self.pid, reason, self.current)
        _say(self.config, lines)
        return pytest.ExitCode.INTERRUPTED if self.signal else DID_NOT_FINISH


def _say(config: pytest.Config, lines: list[str]) -> None:
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def _runs_suites(config: pytest.Config) -> bool:
    """Whether the command line selects the conformance suites (the runs that write results)."""
    suites = Path(__file__).resolve().parents[1]
    args = [a.split("::")[0] for a in config.args] or [str(config.rootpath / p) for p in config.getini("testpaths")]
    for a in args:
        p = Path(a) if Path(a).is_absolute() else config.invocation_params.dir / a
        p = p.resolve()
        if p == suites or suites in p.parents or p in suites.parents:
            return True
    return False


def salvage(config: pytest.Config, pid: int, reason: str, current: dict | None) -> list[str]:
    """Results from the journal of the child ``pid``, marked incomplete, with an ``error`` record for each
    check of the test it was running; the lines that say what was written."""
    from .options import DEFAULT_RESULTS, user_path

    if not _runs_suites(config):  # e.g. `pytest tests`: it writes no results, so it has none to salvage
        return []
    results = user_path(config.getoption("results")) if config.getoption("results") else DEFAULT_RESULTS.absolute()
    journals = sorted(results.parent.glob(f"{results.name}.*-{pid}.partial.jsonl"))
    from xentcheck.journal import JournalError, recover
    from xentcheck.records import CheckRecord, StabilityRecord, summarize
    from xentcheck.results import ResultsError, dumps, load, write_atomic

    if not journals:
        if not results.is_file():
            return ["xentcheck: no record was written"]
        try:  # an earlier run's results must not pass for this run's: kept, marked stale
            doc = load(results)
        except ResultsError:
            return [f"xentcheck: no record was written; {results} is not from this run"]
        doc.complete = False
        doc.incomplete = {
            "reason": f"stale: a later run on this path did not finish ({reason}); these are an earlier run's results",
            "recorded": len(doc.records) + len(doc.stability),
            "expected": None,
        }
        try:
            write_atomic(results, dumps(doc))
        except OSError as e:
            return [f"xentcheck: no record was written; {results} is an earlier run's and could not be marked ({e})"]
        return [f"xentcheck: no record was written; {results} is an earlier run's: kept, marked incomplete (stale)"]

    try:
        doc = recover(journals[-1])
    except JournalError as e:
        return [f"xentcheck: the journal cannot be read ({e})"]
    for pending in (current or {}).get("records") or ():
        raw = {**pending, "reason": f"did not complete: {reason}"[:500]}
        if "axis" in raw:  # a stability sweep's record
            rec = StabilityRecord.from_json(raw)
            if all(s.id != rec.id for s in doc.stability):
                doc.stability = [*doc.stability, rec]
        else:
            rec = CheckRecord.from_json(raw)
            if all(r.id != rec.id for r in doc.records):
                doc.records = sorted([*doc.records, rec], key=lambda r: r.id)
    doc.summary = summarize(doc.records)
    doc.incomplete = {**(doc.incomplete or {}), "reason": reason, "recorded": len(doc.records) + len(doc.stability)}
    doc.complete = False
    try:
        write_atomic(results, dumps(doc))
    except OSError as e:
        return [f"xentcheck: cannot write {results} ({e}); the journal is kept: {journals[-1]}"]
    return [
        f"xentcheck: {len(doc.records)} records written to {results}, marked incomplete; the journal is kept: "
        f"{journals[-1]}"
    ]


class ChildEvents:
    """Registered in the supervised child: tells the parent each test it starts and finishes, with the
    records to keep for its checks if it never finishes, and the exit status at the very end."""

    def __init__(self, config: pytest.Config, pending_records) -> None:
        self.config = config
        self.pending_records = pending_records  # item -> the JSON of its checks' ``error`` records
        self.running: str | None = None  # the test this process runs (never one of an xdist worker's)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem) -> None:
        if CHANNEL is not None and CHANNEL.config is item.config:
            self.running = item.nodeid
            CHANNEL.send(start=item.nodeid, records=self.pending_records(item))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus) -> None:
        if CHANNEL is not None and CHANNEL.config is self.config:
            CHANNEL.send(writing=True)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(self, nodeid, location) -> None:
        # only for a test this process started: an xdist controller logs its workers' 11,000 tests, which
        # its parent need not hear of (a worker that dies is xdist's to report)
        if CHANNEL is not None and CHANNEL.config is self.config and nodeid == self.running:
            self.running = None
            CHANNEL.send(finish=nodeid)


class ReportEnd:
    """Wraps pytest's main in the supervised child: its exit status is its last word to the parent,
    sent once the session is over and its results are written."""

    @pytest.hookimpl(wrapper=True)
    def pytest_cmdline_main(self, config: pytest.Config):
        # the fork happens inside (pytest_cmdline_main of the plugin): only the child has a channel after it
        try:
            result = yield
        except pytest.UsageError:  # pytest.main prints it in one line and exits with its usage code
            _last_word(config, pytest.ExitCode.USAGE_ERROR)
            raise
        except Exception:
            _last_word(config, pytest.ExitCode.INTERNAL_ERROR)
            raise
        _last_word(config, result)
        if CHANNEL is not None and config.pluginmanager.has_plugin("dsession"):
            # the controller of xdist workers (no framework in it): its results are written and the
            # parent has its exit status; tearing down its records and modules would only delay the parent
            atexit.register(exit_now, int(result))
        return result


def _last_word(config: pytest.Config, exitstatus: int) -> None:
    if CHANNEL is not None and CHANNEL.config is config:
        CHANNEL.send(exitstatus=int(exitstatus))
        CHANNEL.close()
