"""Exceptions as one line for records and messages, and where they were raised."""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
#: the longest reason an exception contributes to a record
LIMIT = 500


def one_line(e: BaseException, limit: int = LIMIT) -> str:
    """``Type: first line of the message``, cut to ``limit`` characters."""
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}"[:limit]


def raised_at(e: BaseException) -> str:
    """Where an exception was raised (the innermost Python frame), so a reader can tell a framework
    rejecting an input from glue code failing on it: ``torch/nn/functional.py:3693``. An exception
    relayed from a worker process carries where it was raised there (``remote_at``)."""
    if getattr(e, "remote_at", None):
        return e.remote_at
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return ""
    path = Path(tb.tb_frame.f_code.co_filename)
    for anchor in ("site-packages", "dist-packages"):
        if anchor in path.parts:
            path = Path(*path.parts[path.parts.index(anchor) + 1 :])
            break
    else:
        if path.is_relative_to(_ROOT):
            path = path.relative_to(_ROOT)
    return f"{path}:{tb.tb_lineno}"
