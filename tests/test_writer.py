"""The end of a run (suites/plugin/writer.py): the report is written by a forked child while the results
are written, and whatever the child cannot do is done in the run's own process, errors included."""

import os
import time

import pytest

from suites.plugin.writer import aside


def test_the_work_is_done_in_a_child(tmp_path):
    out = tmp_path / "report.html"
    wait = aside(lambda: out.write_text(str(os.getpid())))
    wait()
    assert out.read_text() != str(os.getpid())


def test_work_the_child_could_not_do_is_done_here_and_its_error_raised_here(tmp_path):
    where = []

    def fails() -> None:
        where.append(os.getpid())  # (the child's list is its own copy)
        raise OSError("disk full")

    wait = aside(fails)
    with pytest.raises(OSError, match="disk full"):
        wait()
    assert where == [os.getpid()]


def test_a_child_that_takes_too_long_is_stopped_and_the_work_done_here(tmp_path):
    out = tmp_path / "report.html"

    def slow() -> None:
        if os.getpid() != me:
            time.sleep(60)
        out.write_text(str(os.getpid()))

    me = os.getpid()
    t0 = time.monotonic()
    aside(slow, patience_s=0.2)()
    assert out.read_text() == str(me) and time.monotonic() - t0 < 30
