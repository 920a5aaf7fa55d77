"""The xdist scheduler of a run (suites/plugin/scheduling.py) keeps a worker group on one worker and
counts pending tests as they are assigned and completed (no rescan of every assigned test per event)."""

from types import SimpleNamespace

import pytest

from suites.plugin.scheduling import make_scheduler

pytest.importorskip("xdist")


class FakeNode:
    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


GROUPS = {f"t{i}": ("a" if i < 6 else "b" if i < 9 else "c") for i in range(12)}


def _scheduler():
    values = {"numprocesses": 2, "tx": ["2*popen"], "maxschedchunk": None}
    config = SimpleNamespace(getvalue=values.get, option=SimpleNamespace(loadscopereorder=False))
    sched = make_scheduler(config, None, GROUPS.get)
    nodes = [FakeNode("gw0"), FakeNode("gw1")]
    for n in nodes:
        sched.add_node(n)
        sched.add_node_collection(n, list(GROUPS))
    sched.schedule()
    return sched, nodes


def test_each_group_runs_on_one_worker_and_every_test_once():
    sched, nodes = _scheduler()
    ran: dict[str, str] = {}
    while sched.has_pending:
        progressed = False
        for node in nodes:
            while node.sent:
                i = node.sent.pop(0)
                ran[list(GROUPS)[i]] = node.gateway.id
                sched.mark_test_complete(node, i)
                progressed = True
        assert progressed, "tests are pending but none was sent"
    assert sorted(ran) == sorted(GROUPS)
    for group in set(GROUPS.values()):
        assert len({ran[t] for t, g in GROUPS.items() if g == group}) == 1, group
    assert sched.tests_finished


def test_the_pending_count_follows_assignments_and_completions():
    sched, nodes = _scheduler()
    for node in nodes:
        workload = sched.assigned_work[node]
        assert sched._pending_of(workload) == sum(not done for unit in workload.values() for done in unit.values())
        i = node.sent.pop(0)
        sched.mark_test_complete(node, i)
        workload = sched.assigned_work[node]
        assert sched._pending_of(workload) == sum(not done for unit in workload.values() for done in unit.values())


def test_a_crashed_worker_hands_its_unfinished_tests_back():
    sched, nodes = _scheduler()
    crashed = nodes[0]
    first = crashed.sent.pop(0)
    sched.mark_test_complete(crashed, first)
    assert sched.remove_node(crashed) is not None  # the test it was running
    assert sched.workqueue  # its unfinished units are queued again
