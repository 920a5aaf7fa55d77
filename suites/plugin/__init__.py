"""The pytest plugin of the conformance run, loaded by the root ``conftest.py``.

The top floor of the layout: it alone imports ``adapters``, ``cases`` and ``reports`` and ties them to
the framework-free core (``xentcheck``). ``options`` reads the command line, ``session`` loads
adapters, cases and the registry and runs one check, ``hooks`` wires the session into pytest,
``scheduling`` groups the checks for pytest-xdist's workers, and ``writer`` journals records and writes
results and report. Adapters are imported lazily, only when
the conformance suite is collected, so ``pytest tests`` (the harness self-tests) imports no framework.
"""

from __future__ import annotations

import os

import pytest

from xentcheck import fuzz
from xentcheck.check import Verdict, record
from xentcheck.records import BenchRecord, CheckRecord, StabilityRecord

from . import supervise
from .fuzzing import FuzzItems
from .hooks import Hooks
from .options import RunOptions, add_options
from .scheduling import Controller, WorkerGroups, checks_of
from .selection import CheckKeywords
from .session import XentSession
from .writer import Writer, check_writable

__all__ = ["XentSession", "attach", "fail_or_skip", "session_of"]

_KEY = pytest.StashKey[XentSession]()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    add_options(parser)
    supervise.add_option(parser)
    if not pluginmanager.has_plugin("xentcheck-supervisor-end"):
        pluginmanager.register(supervise.ReportEnd(), "xentcheck-supervisor-end")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """Fork the supervisor (see ``supervise``): the parent waits and returns the run's exit status (pytest's
    own main then does not run in it), the child runs the session."""
    if supervise.enabled(config):
        return supervise.fork(config)
    return None


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    options = RunOptions.from_config(config)
    if worker is not None and options.bench is None:
        # an xdist worker: its share of the CPUs, set before any framework is imported (no oversubscription)
        from xentcheck.bench import threads

        count = int(worker.get("workercount", 1))
        threads.apply(max(1, threads.available() // count), pin=False)
    # the fuzz target's Hypothesis settings (suites/test_fuzz.py reads them when it is imported, after this)
    fuzz.register_profile(options.fuzz, options.relation_examples, os.environ.get(fuzz.DATABASE_ENV))
    xs = XentSession(options, ["pytest", *config.invocation_params.args])
    config.stash[_KEY] = xs
    redact = frozenset()
    if options.cases and not config.getoption("snippets_with_inputs"):
        from cases import load_catalog

        redact = frozenset(xs.cases) - {c.name for c in load_catalog()}
    hooks = Hooks(config, xs, Writer(options.results, options.report, redact_cases=redact))
    if not hooks.is_worker and not config.option.collectonly:  # the controller alone writes
        for flag, path in (("--results", options.results), ("--report", options.report)):
            check_writable(flag, path)
        hooks.catch_signals()
    config.pluginmanager.register(hooks, "xentcheck-session")
    config.pluginmanager.register(FuzzItems(), "xentcheck-fuzz-items")
    config.pluginmanager.register(CheckKeywords(), "xentcheck-check-keywords")
    if supervise.CHANNEL is not None and supervise.CHANNEL.config is config:
        config.pluginmanager.register(
            supervise.ChildEvents(config, lambda item: _pending_records(xs, item)), "xentcheck-supervised-child"
        )
    if hooks.is_worker:
        config.pluginmanager.register(WorkerGroups(xs.group_ranks), "xentcheck-worker-groups")
    elif getattr(config.option, "dist", "no") != "no":
        config.pluginmanager.register(Controller(), "xentcheck-scheduling")


def _pending_records(xs: XentSession, item: pytest.Item) -> list[dict]:
    """The ``error`` records a test gets if its process ends during it (see ``supervise``): one for each
    check it runs that writes a record (conformance, relation, stability sweep), built from its ``Check``."""
    return [record(c, Verdict("error", "did not complete")).to_json() for c in checks_of(item) if c.records]


def session_of(config: pytest.Config) -> XentSession:
    """The run's XentSession (for the suites' parametrisation and tests)."""
    return config.stash[_KEY]


def attach(request: pytest.FixtureRequest, rec: CheckRecord | BenchRecord | StabilityRecord) -> None:
    """Hand a suite's record to the run (as JSON: it may travel from an xdist worker)."""
    key = {BenchRecord: "xentcheck_bench", StabilityRecord: "xentcheck_stability"}.get(type(rec), "xentcheck")
    request.node.user_properties.append((key, rec.to_json()))


def fail_or_skip(*recs: CheckRecord) -> None:
    """Map the outcomes of a test's records to its pytest verdict: it fails if any failed or erred (each
    named), skips if all are unsupported, else passes (pass and deviation)."""
    bad = [r for r in recs if r.outcome in ("fail", "error")]
    if bad:
        if len(recs) == 1:
            pytest.fail(f"{bad[0].outcome}: {bad[0].reason}", pytrace=False)
        pytest.fail("\n".join(f"{r.id}: {r.outcome}: {r.reason}" for r in bad), pytrace=False)
    if recs and all(r.outcome == "unsupported" for r in recs):
        pytest.skip(recs[0].reason)
