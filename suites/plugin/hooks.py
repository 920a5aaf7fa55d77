"""The pytest hooks of a run: settle unsupported checks at collection, collect records as tests report,
record checks that never finished, and write everything at the end (controller side under xdist)."""

from __future__ import annotations

import gc
import json
import signal
from collections import defaultdict

import pytest

from xentcheck.check import CONFORMANCE, Check
from xentcheck.environment import peak_rss_bytes, process_age_s
from xentcheck.records import BenchRecord, CheckRecord, StabilityRecord

from .fuzzing import FUZZ_KEY, FUZZ_TALLY_KEY
from .scheduling import SETTLED_KEY, checks_of, narrow, write_whole
from .session import XentSession
from .writer import Writer, lock

#: user_properties keys under which the suites attach records (as JSON: they may come from an xdist
#: worker), and the parser of each
PARSERS = {
    "xentcheck": CheckRecord.from_json,
    "xentcheck_bench": BenchRecord.from_json,
    "xentcheck_stability": StabilityRecord.from_json,
}
#: the key of the Checks an item that records attaches at set-up, so a check that never finishes (a hang,
#: a dead worker) still gets a full record
SPEC_KEY = "xentcheck_spec"
#: the kinds of check a run settles at collection where the binding's declaration rules them out
SETTLED_KINDS = (*CONFORMANCE, "relation")


class Hooks:
    """Registered as a plugin for the run; holds the session and the writer."""

    def __init__(self, config: pytest.Config, session: XentSession, writer: Writer) -> None:
        self.config = config
        self.session = session
        self.writer = writer
        self.lines: list[str] = []
        self.lines_before: list[str] = []  # said after collection
        self.announced = False
        self.started: dict[str, list[Check]] = {}  # node id -> the checks that began (those that write records)
        self.expected: int | None = None  # records this run set out to write (None: unknown, e.g. under xdist)
        self.settled = 0  # unsupported checks settled from declarations: records, not pytest tests
        self.signal: str | None = None  # the signal that stopped the run
        self._lock = None  # the results path's lock, taken once the run will write records
        self.first_check_s: float | None = None  # process age when the first check that ran reported
        self.timed: dict[str, list[float]] = defaultdict(list)  # framework -> durations of its checks as tests
        self.worker_peaks: list[int] = []  # the workers' peak memory (the controller's own is small)
        self.usage_error: str | None = None  # a registry name no adapter declares, found by an xdist worker
        writer.header = self.journal_header

    def take_lock(self) -> None:
        """One writer per results path (a run that writes no record, e.g. ``pytest tests``, takes none)."""
        if self._lock is None:
            self._lock = lock(self.writer.results_path)

    def journal_header(self) -> dict:
        """What a journal starts with: enough to rebuild a results document from it."""
        xs = self.session
        return {
            "environment": xs.environment,
            "expectations": [e.as_dict() for e in xs.registry.entries],
            "expected": self.expected,
            "bench": xs.bench.settings() if xs.bench else None,
        }

    def catch_signals(self) -> None:
        """SIGINT and SIGTERM stop the run as an interruption (pytest then finishes the session, so the
        results are written, marked incomplete, and the journal is kept)."""

        def stop(signum, frame):
            if self.signal:  # a second signal (Ctrl-C reaches the supervisor too, which passes SIGTERM on)
                return  # must not interrupt the writing of the results the first one started
            self.signal = signal.Signals(signum).name
            raise KeyboardInterrupt(self.signal)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, stop)

    def harness(self) -> dict:
        """The harness's own speed in this run, for the results file (see xentcheck/results.schema.json)."""
        frameworks = {
            fw: {"checks": len(d), "seconds": sum(d), "checks_per_s": len(d) / sum(d) if sum(d) else None}
            for fw, d in sorted(self.timed.items())
        }
        return {
            "time_to_first_check_s": self.first_check_s,
            "wall_s": process_age_s(),
            "peak_rss_bytes": max([peak_rss_bytes() or 0, *self.worker_peaks]) or None,
            "frameworks": frameworks,
        }

    def incomplete(self, session: pytest.Session, exitstatus: int) -> dict | None:
        """Why the run did not finish (None when it did)."""
        if self.signal:
            reason = f"interrupted by {self.signal}"
        elif exitstatus == pytest.ExitCode.INTERRUPTED:
            reason = "interrupted by a KeyboardInterrupt raised during a check (a binding or the harness)"
        elif exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            reason = "the harness hit an internal error (see pytest's INTERNALERROR above)"
        elif session.shouldstop or session.shouldfail:
            reason = f"stopped early: {session.shouldstop or session.shouldfail}"
        else:
            return None
        w = self.writer
        recorded = len(w.records) + len(w.stability) + (len(self.session.bench.records) if self.session.bench else 0)
        return {"reason": reason, "recorded": recorded, "expected": self.expected}

    @property
    def is_worker(self) -> bool:
        """True inside a pytest-xdist worker: the controller collects records and writes results."""
        return hasattr(self.config, "workerinput")

    def skip_lines(self) -> list[str]:
        env = self.session.environment
        return [f"xentcheck: skipping {name}: {why}" for name, why in env["skipped"].items()] + [
            f"xentcheck: ERROR {why}: the run fails; the other frameworks still run"
            for why in env.get("broken", {}).values()
        ]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """A device no installed framework has is an error before anything runs (one line)."""
        xs = self.session
        device = xs.options.device
        if device != "cpu" and not self.is_worker and not xs.load_adapters():
            why = "; ".join(f"{k}: {v}" for k, v in xs.skipped.items()) or "no framework selected"
            raise pytest.UsageError(
                f"--device={device}: no installed framework can run there ({why}); run on a "
                f"machine with that device, or without --device"
            )

    def pytest_report_collectionfinish(self, config, start_path, items) -> list[str]:
        self.announced = True
        return self.skip_lines() + self.lines_before

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection: only selected checks are recorded
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        """Settle the checks that the bindings' declared capabilities rule out without running them: their
        ``unsupported`` records (with the reason) are written now, and they are not pytest items (two
        thirds of all checks; a skipped item costs milliseconds). pytest-xdist workers keep them as
        items, since only the controller writes records; --collect-only lists every check."""
        wrong = self.session.registry_error  # found while the suites loaded the adapters: one line, nothing runs
        if wrong and not self.is_worker:
            raise pytest.UsageError(wrong)
        if wrong:  # an xdist worker cannot stop the run itself: it runs nothing and tells the controller
            self.usage_error = wrong
            config.hook.pytest_deselected(items=list(items))
            items[:] = []
            return
        # without --probe-capabilities the probe test has an empty parameter set: not a test of this run
        unused = [i for i in items if i.name.startswith("test_probe[") and "NOTSET" in i.name]
        if unused:
            config.hook.pytest_deselected(items=unused)
            items[:] = [i for i in items if i not in unused]
        if config.option.collectonly:
            return
        keep, settled = [], []
        for item in items:
            checks = checks_of(item)
            if not checks or checks[0].kind not in SETTLED_KINDS:
                keep.append(item)
                continue
            recs = [self.session.unsupported(c) for c in checks]
            settled += [r for r in recs if r is not None]
            left = tuple(c for c, r in zip(checks, recs, strict=True) if r is None)
            if len(left) < len(checks) and left:
                narrow(item, left)
            if left:
                keep.append(item)
        items[:] = keep
        if self.is_worker:
            # every worker settles the same checks (collections are identical) and writes them to the
            # file the controller named, before it reports its collection: the controller reads one copy
            # then, while the checks run (at the session's end, 14,000 records through execnet cost each
            # worker and the controller seconds after the last check), and a worker that dies later
            # loses none
            write_whole(config, SETTLED_KEY, "".join(json.dumps(r.to_json()) + "\n" for r in settled))
            return
        params = [getattr(getattr(i, "callspec", None), "params", {}) for i in keep]
        self.expected = len(settled) + sum(
            sum(c.records for c in checks_of(i)) or "bench_spec" in p for i, p in zip(keep, params, strict=True)
        )
        if self.expected or any("probe_spec" in p for p in params):
            self.take_lock()  # before anything runs: a second run on the same path stops here
        for rec in settled:  # after the count: the journal's header carries it
            self.writer.add(rec)
        self.settled = len(settled)
        if settled:
            self.lines_before.append(
                f"xentcheck: {len(settled)} checks are outside the bindings' declared "
                f"capabilities: recorded as unsupported (with the reason) without running"
            )

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        checks = [c.to_json() for c in checks_of(item) if c.records]
        if checks:
            item.user_properties.append((SPEC_KEY, checks))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        # Each phase's report copies the item's user_properties; the controller reads the check at
        # set-up and the records after the call, so the later reports need not carry them again (under
        # xdist each is serialised by the worker and again read by the controller, 11,000 times a run)
        if report.when != "setup":
            ours = (SPEC_KEY, *PARSERS, FUZZ_KEY, FUZZ_TALLY_KEY) if report.when == "teardown" else (SPEC_KEY,)
            report.user_properties = [(k, v) for k, v in report.user_properties if k not in ours]
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        props = dict.fromkeys(PARSERS)
        for key, value in report.user_properties:
            if key == SPEC_KEY and report.when == "setup":
                self.started[report.nodeid] = [Check.from_json(c) for c in value]
            elif key == FUZZ_KEY and report.when == "call":
                self.writer.fuzz_fired.update(json.loads(value))
            elif key == FUZZ_TALLY_KEY and report.when == "call":
                self.writer.fuzz_tallies.append(json.loads(value))
        recs = [PARSERS[k](v) for k, v in report.user_properties if k in props]
        if report.when == "call" and recs:
            self.take_lock()  # under xdist the controller collects nothing: it locks at the first record
            if self.first_check_s is None:
                self.first_check_s = process_age_s()
            for rec in recs:
                self.writer.add(rec, self.session.bench)
                if isinstance(rec, CheckRecord):
                    self.timed[rec.framework].append(report.duration / len(recs))
        elif report.failed and report.when != "setup" and report.nodeid in self.started:
            self.take_lock()
            for rec in self.crash_records(report):  # timed out, or its process died: no record came back
                self.writer.add(rec)

    def crash_records(self, report: pytest.TestReport) -> list[CheckRecord | StabilityRecord]:
        """``error`` records for the checks of a test that never finished: it hung past the timeout, or its
        process died (pytest-xdist replaces the worker)."""
        text = str(report.longrepr or "").strip()
        crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", "")  # e.g. "SystemExit: 3"
        message = (
            next((line.lstrip("E+ ").strip() for line in text.splitlines() if "Timeout" in line), None)
            or (crash.strip().splitlines() or text.splitlines() or ["the process died"])[0]
        )
        return [self.session.crash_record(c, message) for c in self.started[report.nodeid]]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """Controller: merge what a worker learnt about the frameworks (versions, bindings, skips)."""
        out = getattr(node, "workeroutput", {})
        self.usage_error = self.usage_error or out.get("xentcheck_usage_error")
        if out.get("xentcheck_peak_rss"):
            self.worker_peaks.append(int(out["xentcheck_peak_rss"]))
        env = out.get("xentcheck_environment")
        if env:
            for key in ("frameworks", "skipped", "bindings", "interactions"):
                self.session.environment[key].update(env.get(key, {}))
            for key, found in env.get("probes", {}).items():
                self.session.environment.setdefault("probes", {}).setdefault(key, []).extend(found)
        self.take_settled()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids) -> None:
        self.take_settled()
        gc.freeze()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # What is alive now (the frameworks' modules, the collection: millions of objects in a worker)
        # lives until the end: out of the collector's sight, each full collection during the run and
        # pytest's at the end (gc_collect_harder) scans only what came after
        gc.freeze()

    def take_settled(self) -> None:
        """Controller: the settled checks a worker wrote, once (the first worker that collected wrote them)."""
        scheduling = self.config.pluginmanager.get_plugin("xentcheck-scheduling")
        if scheduling is None or self.settled or not scheduling.settled_path.exists():
            return
        lines = scheduling.settled_path.read_text(encoding="utf-8").splitlines()
        if lines:
            self.take_lock()
            for text in lines:
                self.writer.add(CheckRecord.from_json(json.loads(text)))
        self.settled = len(lines)

    @pytest.hookimpl(tryfirst=True)  # before xdist's own hook sends workeroutput to the controller
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        gc.freeze()  # the records live until the process ends: no collection need scan them again
        xs = self.session
        if self.is_worker:
            # plain JSON types only: execnet cannot send everything a framework reports
            self.config.workeroutput["xentcheck_environment"] = json.loads(json.dumps(xs.environment, default=str))
            self.config.workeroutput["xentcheck_peak_rss"] = peak_rss_bytes()
            self.config.workeroutput["xentcheck_usage_error"] = self.usage_error
            return
        if self.usage_error:  # as pytest says a UsageError: one line, no results written
            self.lines = [f"ERROR: {self.usage_error}"]
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        note = self.slice_note()
        sliced = bool(note)
        if note:  # complete as a slice, not as a run: the results say which
            xs.environment["slice"] = note
        incomplete = self.incomplete(session, exitstatus)
        try:
            self.lines, regressed = self.writer.finish(
                xs, sliced, incomplete, self.harness(), keyword=self.keyword_slice()
            )
        except Exception as e:  # a harness bug (e.g. our own document failed its schema): say so plainly
            self.writer.journal.close(remove=False)
            where = f"; the records are kept in {self.writer.journal.path}" if self.writer.journal.written else ""
            self.lines = [f"xentcheck: internal error while writing results: {type(e).__name__}: {e}{where}"]
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        stale = any(line.startswith("xentcheck: STALE") for line in self.lines)
        broken = bool(xs.environment.get("broken"))
        if (stale or broken or self.writer.failed or regressed) and session.exitstatus == 0:
            session.exitstatus = 1

    def slice_by_node(self) -> str:
        """How the command line picked tests by node id (``FILE::TEST``) or ``--deselect``; "" if not."""
        if any("::" in str(a) for a in self.config.args):
            return "node ids"
        return "--deselect" if self.config.getoption("deselect", None) else ""

    def slice_note(self) -> str:
        """What made this run a slice ("" for a full run), for the results file and the terminal."""
        opt = self.config.option
        parts = [
            f"-k {opt.keyword!r}" if getattr(opt, "keyword", "") else "",
            f"-m {opt.markexpr!r}" if getattr(opt, "markexpr", "") else "",
            "--one-per-category" if self.session.options.one_per_category else "",
            " ".join(f"--case={n}" for n in self.session.options.case_names),
            " ".join(f"--binding={n}" for n in self.session.options.binding_names),
            self.slice_by_node(),
        ]
        return ", ".join(p for p in parts if p)

    def keyword_slice(self) -> str:
        """The -k expression when it alone slices the run (then a baseline's checks it would select must
        be in this run); "" otherwise (another slice accepts every check it does not have)."""
        opt = self.config.option
        o = self.session.options
        if (
            getattr(opt, "markexpr", "")
            or o.one_per_category
            or o.case_names
            or o.binding_names
            or self.slice_by_node()
        ):
            return ""
        return getattr(opt, "keyword", "") or ""

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        for line in ([] if self.announced else self.skip_lines()) + self.lines:
            terminalreporter.write_line(line)
        if self.writer.records and not self.is_worker:
            terminalreporter.write_line(self.how_pytest_counts(terminalreporter))

    def how_pytest_counts(self, terminalreporter) -> str:
        """How pytest's counts relate to the records: which records are pytest tests, and what else is."""
        w = self.writer
        bench = len(self.session.bench.records) if self.session.bench else 0
        as_tests = len(w.records) - self.settled
        ids = {r.nodeid for k in ("passed", "failed", "skipped", "error") for r in terminalreporter.stats.get(k, [])}
        tests = sum(i.startswith(("suites/test_conformance.py", "suites/test_relations.py")) for i in ids)
        snippets = sum(i.startswith("suites/test_repro.py") for i in ids)
        placeholder = 0 if bench else sum(i.startswith("suites/test_benchmarks.py") for i in ids)
        others = len(ids) - tests - len(w.stability) - bench - snippets - placeholder  # e.g. tests/
        settled = (
            f"{self.settled} unsupported ones were settled from the bindings' declarations and are no pytest tests; "
            if self.settled
            else ""
        )
        extra = (
            (f", {bench} benchmarks" if bench else "")
            + (f", {placeholder} skipped benchmark placeholder (no --bench)" if placeholder else "")
            + (f", {others} other tests" if others > 0 else "")
        )
        return (
            f"xentcheck: how pytest counts them: {settled}the other {as_tests} come from {tests} pytest tests "
            f"(a conformance test checks a binding on a case in one dtype and mode, every reduction, value "
            f"and gradient: it passes when each passes or deviates as documented, skips when all are "
            f"unsupported, fails when any fails or errs), beside {len(w.stability)} stability sweeps, "
            f"{snippets} snippet checks{extra}"
        )
