"""The pytest hooks of a run: settle unsupported checks at collection, collect records as tests report,
record checks that never finished, and write everything at the end (controller side under xdist)."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from xentcheck.records import BenchRecord, CheckRecord, StabilityRecord

from .session import CheckSpec, XentSession
from .writer import Writer

#: user_properties keys under which the suites attach records (as JSON: they may come from an xdist
#: worker), and the parser of each
PARSERS = {"xentcheck": CheckRecord.from_json, "xentcheck_bench": BenchRecord.from_json,
           "xentcheck_stability": StabilityRecord.from_json}
#: the key of the spec a conformance item attaches at set-up, so a check that never finishes (a hang,
#: a dead worker) still gets a full record
SPEC_KEY = "xentcheck_spec"


class Hooks:
    """Registered as a plugin for the run; holds the session and the writer."""

    def __init__(self, config: pytest.Config, session: XentSession, writer: Writer) -> None:
        self.config = config
        self.session = session
        self.writer = writer
        self.lines: list[str] = []
        self.lines_before: list[str] = []  # said after collection
        self.announced = False
        self.started: dict[str, CheckSpec] = {}  # node id -> spec of conformance checks that began

    @property
    def is_worker(self) -> bool:
        """True inside a pytest-xdist worker: the controller collects records and writes results."""
        return hasattr(self.config, "workerinput")

    def skip_lines(self) -> list[str]:
        return [f"xentcheck: skipping {name}: {why}" for name, why in self.session.environment["skipped"].items()]

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        """A device no installed framework has is an error before anything runs (one line)."""
        xs = self.session
        device = xs.options.device
        if device != "cpu" and not self.is_worker and not xs.load_adapters():
            why = "; ".join(f"{k}: {v}" for k, v in xs.skipped.items()) or "no framework selected"
            raise pytest.UsageError(f"--device={device}: no installed framework can run there ({why}); run on a "
                                    f"machine with that device, or without --device")

    def pytest_report_collectionfinish(self, config, start_path, items) -> list[str]:
        self.announced = True
        return self.skip_lines() + self.lines_before

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection: only selected checks are recorded
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        """Settle the checks that the bindings' declared capabilities rule out without running them: their
        ``unsupported`` records (with the reason) are written now, and they are not pytest items (two
        thirds of all checks; a skipped item costs milliseconds). pytest-xdist workers keep them as
        items, since only the controller writes records; --collect-only lists every check."""
        if self.is_worker or config.option.collectonly:
            return
        keep, settled = [], 0
        for item in items:
            spec = getattr(getattr(item, "callspec", None), "params", {}).get("spec")
            rec = self.session.unsupported(spec) if isinstance(spec, CheckSpec) else None
            if rec is not None:
                self.writer.add(rec)
                settled += 1
                continue
            keep.append(item)
        items[:] = keep
        if settled:
            self.lines_before.append(f"xentcheck: {settled} checks are outside the bindings' declared capabilities: "
                                     f"recorded as unsupported (with the reason) without running")

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        spec = getattr(getattr(item, "callspec", None), "params", {}).get("spec")
        if isinstance(spec, CheckSpec):
            item.user_properties.append((SPEC_KEY, asdict(spec)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        props = dict.fromkeys(PARSERS)
        for key, value in report.user_properties:
            if key == SPEC_KEY and report.when == "setup":
                self.started[report.nodeid] = CheckSpec(**value)
        recs = [PARSERS[k](v) for k, v in report.user_properties if k in props]
        if report.when == "call" and recs:
            for rec in recs:
                self.writer.add(rec, self.session.bench)
        elif report.failed and report.when != "setup" and report.nodeid in self.started:
            self.writer.add(self.crash_record(report))  # timed out, or its process died: no record came back

    def crash_record(self, report: pytest.TestReport) -> CheckRecord:
        """An ``error`` record for a check that never finished: it hung past the timeout, or its process
        died (pytest-xdist replaces the worker)."""
        spec = self.started[report.nodeid]
        text = str(report.longrepr or "").strip()
        message = next((line.lstrip("E+ ").strip() for line in text.splitlines() if "Timeout" in line), None) \
            or (text.splitlines() or ["the process died"])[0]
        c = self.session.cases.get(spec.case)
        return CheckRecord(id=spec.id, framework=spec.framework, binding=spec.binding, api=spec.binding, op=spec.op,
                           case=spec.case, category=c.category if c else "", dtype=spec.dtype, mode=spec.mode,
                           device=self.session.options.device, reduction=spec.reduction,
                           target=c.target_kind if c else None, check=spec.check, outcome="error",
                           reason=f"did not complete: {message}"[:500])

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        """Controller: merge what a worker learnt about the frameworks (versions, bindings, skips)."""
        env = getattr(node, "workeroutput", {}).get("xentcheck_environment")
        if env:
            for key in ("frameworks", "skipped", "bindings"):
                self.session.environment[key].update(env[key])

    @pytest.hookimpl(tryfirst=True)  # before xdist's own hook sends workeroutput to the controller
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        xs = self.session
        if self.is_worker:
            # plain JSON types only: execnet cannot send everything a framework reports
            self.config.workeroutput["xentcheck_environment"] = json.loads(json.dumps(xs.environment, default=str))
            return
        opt = self.config.option
        sliced = bool(getattr(opt, "keyword", "") or getattr(opt, "markexpr", "") or xs.options.one_per_category)
        try:
            self.lines, regressed = self.writer.finish(xs.environment, xs.registry, xs.versions(), xs.bench, sliced,
                                                       xs.baseline)
        except Exception as e:  # a harness bug (e.g. our own document failed its schema): say so plainly
            journal = self.writer.close_journal()
            where = f"; the records are kept in {journal}" if journal else ""
            self.lines = [f"xentcheck: internal error while writing results: {type(e).__name__}: {e}{where}"]
            session.exitstatus = 3
            return
        stale = any(line.startswith("xentcheck: STALE") for line in self.lines)
        if (stale or self.writer.failed or regressed) and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        for line in ([] if self.announced else self.skip_lines()) + self.lines:
            terminalreporter.write_line(line)
