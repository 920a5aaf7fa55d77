"""Reproduction snippets are faithful: for every binding that declares a call, the snippet a failure
would carry runs on its own (no xentcheck import) and gives the binding's own value and gradient.
One problem per binding and option family (weights, ignore_index, label smoothing, spatial layout, where=),
eager. Ids read ``framework-binding-case``."""

import contextlib
import io

import numpy as np
import pytest

from suites.plugin import session_of
from xentcheck.checks import cotangent_for

#: cases that exercise each option a call spells (a case a binding cannot take is skipped)
CASES = (
    "random_index",
    "random_binary",
    "soft_dirichlet",
    "class_weights",
    "sample_weights",
    "pos_weight",
    "ignore_index",
    "label_smoothing",
    "spatial_index",
    "channels_first_soft",
    "tutorial_probabilities",
    "where_on_target",
    "where_on_target_onehot",
)


def _numpy(v) -> np.ndarray:
    v = v.detach() if hasattr(v, "detach") else v  # a torch tensor that requires grad
    return np.asarray(v, dtype=np.float64)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repro_spec" in metafunc.fixturenames:
        specs = session_of(metafunc.config).snippet_specs(CASES)
        metafunc.parametrize("repro_spec", specs, ids=[s.test_id for s in specs])


def test_snippet_reproduces_the_binding(repro_spec, request: pytest.FixtureRequest) -> None:
    xs = session_of(request.config)
    fw, name, case = repro_spec.framework, repro_spec.binding, repro_spec.case
    adapter, binding = xs.adapters[fw], xs.bindings(fw)[name]
    reductions = sorted(set(xs.cases[case].reductions) & set(binding.caps.reductions))
    if not reductions:
        pytest.skip(f"{name} offers none of the case's reductions")
    problem = xs.cases[case].problem(binding.caps.op, "float32", "none" if "none" in reductions else reductions[0])
    why = binding.caps.why_unsupported(problem)
    if why:
        pytest.skip(why)
    cot = cotangent_for(problem, binding.convention_for(problem))
    check = "grad" if binding.caps.grad else "value"
    try:
        out = adapter.run(binding, problem, grad=check == "grad", cotangent=cot)
    except Exception as e:  # the binding raises here: the snippet must raise the same
        out, raised = None, e
    text = adapter.repro(binding, problem, check, cot, None)
    assert text and "xentcheck" not in text.split("# xentcheck's oracle")[0].replace("xentcheck's", "")
    scope: dict = {}
    if out is None:
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(type(raised)):
            exec(compile(text, f"<snippet {fw} {name}>", "exec"), scope)
        return
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(text, f"<snippet {fw} {name}>", "exec"), scope)
    got = _numpy(scope["loss"])
    np.testing.assert_allclose(got, out.value, rtol=1e-6, atol=1e-7, err_msg=text)
    if check == "grad":
        g = _numpy(scope["grad"])
        np.testing.assert_allclose(g, out.grad, rtol=1e-6, atol=1e-7, err_msg=text)
