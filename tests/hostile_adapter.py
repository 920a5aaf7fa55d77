"""Adapters that attack the run rather than compute a loss (docs/faults.md), for the fault tests. Each
misbehaves on the ``tutorial_logits`` case only and computes honestly elsewhere
(``--adapter=tests.hostile_adapter:NAME``)."""

from __future__ import annotations

import os
import signal
import sys
import time

from tests.fake_adapter import FakeAdapter

_CASE = "tutorial_logits"


class ExitingAdapter(FakeAdapter):
    """Ends the process with status 0, as a native library's ``exit(0)`` would (no atexit, no finally)."""

    def run(self, binding, problem, **kw):
        if problem.case == _CASE:
            sys.stdout.flush()
            os._exit(0)
        return super().run(binding, problem, **kw)


class NativeHangAdapter(FakeAdapter):
    """Hangs as a deadlock in C does: the signals that would interrupt Python are blocked, and the
    sleep is one long call (no bytecode runs, so neither pytest-timeout nor a signal handler fires)."""

    def run(self, binding, problem, **kw):
        if problem.case == _CASE:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGALRM})
            time.sleep(600)
        return super().run(binding, problem, **kw)


class SysExitAdapter(FakeAdapter):
    """Calls ``sys.exit(3)`` from a binding."""

    def run(self, binding, problem, **kw):
        if problem.case == _CASE:
            sys.exit(3)
        return super().run(binding, problem, **kw)


class ChdirAdapter(FakeAdapter):
    """Changes the working directory while it runs (a relative results path would move with it)."""

    def run(self, binding, problem, **kw):
        os.chdir(os.environ.get("XC_CHDIR_TO", "/"))
        return super().run(binding, problem, **kw)


class OddEnvironmentAdapter(FakeAdapter):
    """Reports what JSON cannot hold in its environment: a set and a NaN."""

    def environment(self) -> dict:
        return {self.name: "0.0", "flags": {"b", "a"}, "clock": float("nan")}


EXITING = ExitingAdapter("exits")
NATIVE_HANG = NativeHangAdapter("hangsnative")
SYS_EXIT = SysExitAdapter("sysexit")
CHDIR = ChdirAdapter("chdir")
ODD_ENVIRONMENT = OddEnvironmentAdapter("oddenv")
NAMED_NUMPY = FakeAdapter("numpy")  # takes a built-in framework's name


class ForkingExitAdapter(FakeAdapter):
    """Leaves a grandchild that holds every inherited descriptor open (the supervisor's pipe too), then
    ends its process with status 0."""

    def run(self, binding, problem, **kw):
        if problem.case == _CASE:
            if os.fork() == 0:
                time.sleep(20)
                os._exit(0)
            os._exit(0)
        return super().run(binding, problem, **kw)


class SleepingAdapter(FakeAdapter):
    """Sleeps in Python on one case (a signal handler can run): a healthy run that is cancelled."""

    def run(self, binding, problem, **kw):
        if problem.case == _CASE:
            time.sleep(600)
        return super().run(binding, problem, **kw)


FORKING_EXIT = ForkingExitAdapter("forks")
SLEEPING = SleepingAdapter("sleeps")


class ExitAtStartAdapter(FakeAdapter):
    """Ends the process with status 0 while the run collects (before any record is journalled)."""

    def environment(self) -> dict:
        os._exit(0)


EXIT_AT_START = ExitAtStartAdapter("exitsearly")
