"""The pytest-xdist scheduling of a run: which worker group each test belongs to, in which order the
groups are handed out, and the scheduler that keeps a group on one worker.

A test's group comes from its :class:`~xentcheck.check.Check` (the suites' parameter) and the
``worker_groups`` its adapter declares (:class:`xentcheck.protocol.WorkerGroup`): nothing here names a
framework. The workers know the checks (they collect); the controller, which schedules, only sees node
ids. So each worker writes the node id -> group table it computed to a file the controller names
(``pytest_configure_node``) before it reports its collection, and the controller's scheduler reads it:
the ids are never parsed. The workers hand over their settled (unsupported) checks the same way
(:func:`write_whole`, :data:`SETTLED_KEY`).
"""

from __future__ import annotations

import atexit
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from xentcheck.check import Bundle, Check

#: the suites' parameters that hold a Check
CHECK_PARAMS = ("spec", "relation_spec", "stability_spec", "probe_spec", "repro_spec")
#: the workerinput key naming the group table's path
_TABLE_KEY = "xentcheck_groups"
#: the workerinput key naming the file a worker writes its settled checks to (JSON lines)
SETTLED_KEY = "xentcheck_settled"


def checks_of(item: pytest.Item) -> tuple[Check, ...]:
    """The Checks a suite's test item runs: a conformance test's bundle, another suite's one check
    (none for any other test)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for key in CHECK_PARAMS:
        value = params.get(key)
        if isinstance(value, Bundle):
            return value.checks
        if isinstance(value, Check):
            return (value,)
    return ()


def check_of(item: pytest.Item) -> Check | None:
    """The (first) Check a suite's test item runs (None for any other test): its group and kind are
    those of every check it runs."""
    return next(iter(checks_of(item)), None)


def bundle_of(item: pytest.Item) -> Bundle | None:
    """The bundle a conformance test runs (None for any other test)."""
    value = getattr(getattr(item, "callspec", None), "params", {}).get("spec")
    return value if isinstance(value, Bundle) else None


def narrow(item: pytest.Item, checks: tuple[Check, ...]) -> None:
    """Let a conformance test run only ``checks`` of its bundle (the others settled or deselected), before
    it is set up: its parameter is read from the call spec then."""
    item.callspec.params["spec"] = Bundle(checks)


def group_for(adapter, kind: str, dtype: str = "", mode: str = "eager") -> str:
    """The worker group of a check of ``adapter``: the first of its declared ``worker_groups`` that takes
    the check's kind, dtype and mode, else the framework's name."""
    declared = getattr(adapter, "worker_groups", ())
    return next((g.name for g in declared if g.takes(kind, dtype, mode)), adapter.name)


def _rank(item: pytest.Item, ranks: dict[str, int]) -> float:
    """Where ``item``'s group is handed out: its declared rank; a group without one, or a test of no
    group, after all of them."""
    check = check_of(item)
    return ranks.get(check.group, math.inf) if check is not None else math.inf


class WorkerGroups:
    """Registered in xdist workers: orders the tests by their groups' ranks (under --no-loadscope-reorder
    the order of the collection is the order in which groups are handed out), writes the group table
    for the controller's scheduler, and ends the worker process quickly once its session is over."""

    def __init__(self, ranks) -> None:
        self.ranks = ranks  # a zero-argument call: group name -> rank, from the loaded adapters

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Everything the worker reports has reached the controller by now. Tearing down TensorFlow's,
        # JAX's and PyTorch's modules at interpreter exit takes 2-5 s per worker, which the controller
        # waits for; the last atexit handler registered runs first and skips it.
        atexit.register(exit_now)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        ranks = self.ranks()
        items.sort(key=lambda i: _rank(i, ranks))  # stable within a group
        if config.workerinput.get(_TABLE_KEY):
            table = {i.nodeid: c.group for i in items for c in [check_of(i)] if c is not None and c.group}
            write_whole(config, _TABLE_KEY, json.dumps(table))


def write_whole(config: pytest.Config, key: str, text: str) -> None:
    """Worker: write ``text`` to the file the controller named under ``key`` in its workerinput (if it
    named one), whole: through a file of this worker's own, renamed into place, so the controller never
    reads half of it, and every worker may write the same file (their collections are identical)."""
    path = config.workerinput.get(key)
    if path:
        mine = f"{path}.{config.workerinput.get('workerid', 'gw')}"
        Path(mine).write_text(text, encoding="utf-8")
        os.replace(mine, path)


def exit_now(status: int = 0) -> None:
    """End the process at once (as the last atexit handler registered, the first to run): what it had to
    say is said and written, and the interpreter's teardown of large modules only costs seconds."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class Controller:
    """Registered in the controller of an xdist run: names the files the workers hand over (the group
    table, the settled checks) and makes the scheduler that reads the table."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="xentcheck-handover-"))
        self.path = self.folder / "groups.json"
        self.settled_path = self.folder / "settled.jsonl"
        self._table: dict[str, str] | None = None

    def group_of(self, nodeid: str) -> str | None:
        """The worker group of a test, from the table the workers wrote (None: a test of no group)."""
        if self._table is None:
            try:
                self._table = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self._table = {}  # no worker wrote one (e.g. no suite collected): every test on its own
        return self._table.get(nodeid)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput[_TABLE_KEY] = str(self.path)
        node.workerinput[SETTLED_KEY] = str(self.settled_path)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_make_scheduler(self, config, log):
        if config.getoption("dist", "no") == "loadgroup":
            return make_scheduler(config, log, self.group_of)
        return None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # (a replaced worker writes to it until the end)


def make_scheduler(config: pytest.Config, log, group_of):
    """``--dist loadgroup`` for this suite: each worker group's tests run on one worker (a framework's
    kernels are compiled once: JAX's eager dispatch compiles every primitive per shape). The groups come
    from the checks, not from ``xdist_group`` marks, which pytest-xdist 3.8.0 under pytest 9.2.0 does not
    honour (even a static mark in a minimal test is split across workers; cf. pytest-dev/pytest-xdist#1241)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """LoadScopeScheduling with O(1) bookkeeping per finished test. xdist 3.8.0 counts a node's pending
        tests by scanning all its assigned tests after every test (and in ``has_pending``/
        ``tests_finished`` on every event), and finds each test's index with ``list.index``: quadratic in
        the run's 10,000 tests, seconds of the controller's CPU on a machine whose two cores the workers
        need. Here a node's pending count is kept as tests are assigned and completed."""

        def __init__(self, config, log=None) -> None:
            super().__init__(config, log)
            self._pending: dict[int, int] = {}  # id(a node's workload) -> its tests not yet completed
            self._indices: dict[object, dict[str, int]] = {}  # node -> nodeid -> index in its collection

        def _split_scope(self, nodeid: str) -> str:
            return group_of(nodeid) or nodeid

        def _pending_of(self, workload: dict[str, dict[str, bool]]) -> int:
            return self._pending.get(id(workload), 0)

        def _assign_work_unit(self, node) -> None:
            scope, work_unit = self.workqueue.popitem(last=False)
            workload = self.assigned_work.setdefault(node, {})
            workload[scope] = work_unit
            todo = [nodeid for nodeid, completed in work_unit.items() if not completed]
            self._pending[id(workload)] = self._pending_of(workload) + len(todo)
            index = self._indices.get(node)
            if index is None:
                index = self._indices[node] = {n: i for i, n in enumerate(self.registered_collections[node])}
            node.send_runtest_some([index[nodeid] for nodeid in todo])

        def mark_test_complete(self, node, item_index: int, duration: float = 0) -> None:
            nodeid = self.registered_collections[node][item_index]
            workload = self.assigned_work[node]
            work_unit = workload[self._split_scope(nodeid)]
            if not work_unit[nodeid]:
                work_unit[nodeid] = True
                self._pending[id(workload)] -= 1
            self._reschedule(node)

        def remove_node(self, node):
            workload = self.assigned_work.get(node)
            try:
                return super().remove_node(node)
            finally:  # its unfinished units are back in the queue, counted again when reassigned
                self._pending.pop(id(workload), None)
                self._indices.pop(node, None)

    return GroupScheduling(config, log)
