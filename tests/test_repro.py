"""Reproduction snippets (framework-free): the text runs on its own and computes what it says, inputs
are written exactly, options appear only when used, and the report shows the snippet escaped."""

import contextlib
import io

import numpy as np

from adapters.repro import Dialect, snippet
from xentcheck.problem import Problem

from .test_report import render
from .test_results import _doc

NUMPY = Dialect(
    imports="import numpy as np",
    array=lambda lit, dt: f"np.asarray({lit}, dtype=np.{dt})",
    index=lambda lit: f"np.asarray({lit})",
    grad="",
    options={"class_weight": "w=class_weight"},
)
CALL = "ce({x}, {t}{opts}, reduction={reduction})"
PRELUDE = """
def ce(z, t, w=None, reduction="none"):
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    loss = -np.take_along_axis(logp, t[:, None], -1)[:, 0] * (1 if w is None else w[t])
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
"""


def _problem(**kw):
    x = np.array([[0.1, -2.5, 3.0000001], [1e-8, 0.0, -1.0]])
    return Problem(case="c", op="softmax_ce", dtype="float64", x=x, target=np.array([2, 0]), target_kind="index", **kw)


def _run(text: str) -> dict:
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(PRELUDE + text, scope)
    return scope


def test_the_snippet_runs_on_its_own_and_carries_the_inputs_exactly():
    p = _problem(reduction="sum")
    text = snippet(NUMPY, CALL, p, "value", expected=np.array(1.25))
    scope = _run(text)
    np.testing.assert_array_equal(scope["x"], p.x)  # every digit survives the round trip
    z = p.x
    want = -(z[[0, 1], [2, 0]] - np.log(np.exp(z).sum(-1))).sum()
    assert scope["loss"] == want
    assert "reduction='sum'" in text and "w=" not in text  # an unused option is not spelled
    assert "# xentcheck's oracle (exact, float64) expects the value:\n# 1.25" in text


def test_used_options_are_spelled_in_the_frameworks_names():
    p = _problem(class_weight=np.array([1.0, 2.0, 3.0]))
    text = snippet(NUMPY, CALL, p, "value")
    assert "w=class_weight" in text
    np.testing.assert_allclose(_run(text)["loss"][0], -(p.x[0, 2] - np.log(np.exp(p.x[0]).sum())) * 3.0)


def test_large_inputs_get_no_snippet():
    p = _problem()
    big = Problem(
        case="c",
        op="softmax_ce",
        dtype="float64",
        x=np.zeros((100, 100)),
        target=np.zeros(100, dtype=np.int64),
        target_kind="index",
    )
    assert snippet(NUMPY, CALL, big, "value") is None and snippet(NUMPY, CALL, p, "value") is not None


def test_the_report_shows_a_failures_snippet_escaped():
    doc = _doc()
    doc["records"][0].update(outcome="fail", reason="r", repro="x = f('<b>')\nprint(x)")
    html = render([doc])
    assert "x = f(&#39;&lt;b&gt;&#39;)" in html and "f('<b>')" not in html
    assert "snippet (fake)" in html
