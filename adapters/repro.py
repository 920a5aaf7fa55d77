"""Standalone reproduction snippets: a failing check as a few lines in the framework's own API.

A binding declares ``call``: its loss as one Python expression over the names a snippet defines
(``class_weight``, ``sample_weight``, ``pos_weight``, ``ignore_index``, ``label_smoothing``), with
format fields for what differs between problems and APIs: ``{x}`` and ``{t}`` (the input and the
target, in the framework's layout), ``{opts}`` (the keyword arguments of the options the problem
uses, in the framework's names, with a leading comma) and ``{reduction}`` (the binding family's
spelling of the reduction). A framework's
:class:`Dialect` says how to write arrays and take a gradient. The snippet runs without xentcheck,
and ends with what xentcheck's oracle expects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xentcheck.problem import OPTIONS, Problem

#: snippets carry their inputs literally; larger problems are not worth pasting
MAX_ELEMENTS = 4096


@dataclass(frozen=True)
class Dialect:
    """How one framework spells a snippet."""

    imports: str
    array: Callable[[str, str], str]  # (literal, dtype) -> expression
    index: Callable[[str], str]  # literal -> integer array expression
    grad: str  # lines taking loss and grad from loss_fn, x and cot
    options: dict[str, str] = field(default_factory=dict)  # option -> keyword text in calls
    channels_first: Callable[[str], str] | None = None  # class axis to position 1: name -> expression
    native_channels_first: bool = False  # the API's own layout is (N, C, d1, ...)
    compile: str = ""  # compiled mode: a line wrapping loss_fn


def _literal(a: np.ndarray) -> str:
    a = np.asarray(a)
    return _formatted(a.dtype, a.shape, a.tobytes())


@functools.lru_cache(maxsize=256)
def _formatted(dtype: np.dtype, shape: tuple[int, ...], data: bytes) -> str:
    # by value: a case's arrays recur in the snippets of its every reduction, check and binding, and
    # formatting each element's shortest repr is most of a snippet's cost
    a = np.frombuffer(data, dtype=dtype).reshape(shape)
    return (
        np.array2string(a, separator=", ", threshold=MAX_ELEMENTS + 1, max_line_width=100, floatmode="unique")
        .replace("inf", "float('inf')")
        .replace("nan", "float('nan')")
    )


def snippet(
    dialect: Dialect,
    call: str,
    problem: Problem,
    check: str,
    *,
    mode: str = "eager",
    cotangent: np.ndarray | None = None,
    expected: np.ndarray | None = None,
) -> str | None:
    """The snippet for one binding call on one problem (None when the problem is too large)."""
    if problem.x.size > MAX_ELEMENTS:
        return None
    p = problem
    dt = p.dtype
    x, x_int = p.handed_x()  # integer logits are written as the binding receives them
    lines = [dialect.imports, "", f"x = {dialect.index(_literal(x)) if x_int else dialect.array(_literal(x), dt)}"]
    t, as_index = p.handed_target()  # a malformed target is written as the binding receives it
    lines.append(f"target = {dialect.index(_literal(t)) if as_index else dialect.array(_literal(t), dt)}")
    for name in ("class_weight", "sample_weight", "pos_weight"):
        v = getattr(p, name)
        lines.append(f"{name} = {dialect.array(_literal(v), dt) if v is not None else None}")
    lines.append(f"ignore_index = {p.ignore_index}")
    lines.append(f"label_smoothing = {p.label_smoothing}")
    moved = p.channels_first or (p.spatial and dialect.native_channels_first)
    cf = dialect.channels_first if moved else None
    if p.where is not None:  # the class mask, as booleans in the binding's layout
        lines.append(f"where = {dialect.index(_literal(p.where.astype(np.int64)))} != 0")
        if cf:
            lines.append(f"where = {cf('where')}")
    used = [opt for opt in OPTIONS if opt in p.options_used() and opt in dialect.options]
    opts = "".join(f", {dialect.options[o]}" for o in used)
    red = repr(p.reduction)
    x, t = (cf("x"), cf("target") if p.target_kind != "index" else "target") if cf else ("x", "target")
    lines += ["", "def loss_fn(x):", "    return " + call.format(x=x, t=t, opts=opts, reduction=red), ""]
    if mode == "compiled" and dialect.compile:
        lines += [dialect.compile, ""]
    if check == "grad" and dialect.grad:
        cot = "None" if cotangent is None else dialect.array(_literal(cotangent), dt)
        lines += [f"cot = {cot}  # the upstream gradient (None: the loss is a scalar)", dialect.grad]
        lines += ['print("loss:", loss)', 'print("grad:", grad)']
    else:
        lines += ["loss = loss_fn(x)", 'print("loss:", loss)']
    if expected is not None and p.has_loss:
        lines.append(
            f"# xentcheck's oracle (exact, float64) expects the {check}:\n# " + _literal(expected).replace("\n", "\n# ")
        )
    return "\n".join(lines)
