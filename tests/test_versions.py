"""Versions, honestly: an option a binding needs a newer release for is withdrawn with the reason on
older ones (its checks are unsupported, never an error), an exception raised by an adapter's own code
is never read as the framework refusing an input, and the minimum environment is pyproject's floor."""

import re
import tomllib
from dataclasses import replace

from xentcheck import invalid_input
from xentcheck.checks import Judge
from xentcheck.expectations import Registry
from xentcheck.protocol import Capabilities

from .fake_adapter import HONEST, FakeAdapter
from .runs import ROOT
from .test_checks import CASES

CAPS = Capabilities(
    "softmax_ce",
    frozenset({"index"}),
    options=frozenset({"spatial", "channels_first"}),
    requires=(("channels_first", "optax", ">=0.2.4"),),
)


def test_an_option_the_installed_version_lacks_is_withdrawn_with_the_reason():
    old = CAPS.for_versions({"optax": "0.2.3"})
    assert old.options == {"spatial"} and old.as_dict()["unavailable"] == {
        "channels_first": "option channels_first needs optax>=0.2.4 (installed: 0.2.3)"
    }
    assert CAPS.for_versions({"optax": "0.2.8"}) is CAPS
    assert "channels_first" not in CAPS.for_versions({}).options  # not installed: not offered


def test_its_checks_are_unsupported_with_the_reason_never_an_error():
    b = replace(
        HONEST.bindings()[0],
        caps=replace(HONEST.bindings()[0].caps, options=CAPS.options, requires=CAPS.requires).for_versions(
            {"optax": "0.2.3"}
        ),
    )
    case = next(c for c in CASES.values() if c.channels_first and c.target_kind == "index")
    rec = Judge(Registry(), {}).check(HONEST, b, case.problem("softmax_ce", "float32", "none"), "value")
    assert rec.outcome == "unsupported" and rec.reason == "option channels_first needs optax>=0.2.4 (installed: 0.2.3)"


class GlueTypeError(FakeAdapter):
    """An adapter whose own call fails, as passing a keyword the installed framework lacks does."""

    def run(self, binding, problem, **kw):
        raise TypeError("softmax_cross_entropy() got an unexpected keyword argument 'axis'")


def test_an_exception_from_the_adapters_own_code_is_an_error_not_a_refusal(monkeypatch):
    p = CASES["label_out_of_range"].problem("softmax_ce", "float32", "none")
    b = HONEST.bindings()[0]
    passes = Judge(Registry(), {}).check(GlueTypeError("fake"), b, p, "value")
    assert passes.outcome == "pass"  # raised outside the built-in adapters: the implementation refused it
    monkeypatch.setattr(invalid_input, "GLUE", "tests/")  # this fake adapter's code as the glue
    rec = Judge(Registry(), {}).check(GlueTypeError("fake"), b, p, "value")
    assert rec.outcome == "error" and rec.reason.startswith("raised by xentcheck's adapter code at tests/")


def test_a_framework_error_surfacing_in_adapter_code_is_still_the_frameworks():
    """A NumPy ufunc raises in C: its innermost Python frame is the adapter's line, yet NumPy refused."""
    import numpy as np

    try:
        np.ones(3) * np.ones(4)
    except ValueError as e:
        assert not invalid_input.glue_failure(e, "adapters/numpy_scipy.py:84")
    sig = TypeError("f() got an unexpected keyword argument 'axis'")
    assert invalid_input.glue_failure(sig, "adapters/jax_optax.py:51")
    assert invalid_input.glue_failure(AttributeError("module 'optax' has no attribute 'x'"), "adapters/jax_optax.py:9")
    assert not invalid_input.glue_failure(sig, "optax/losses/_classification.py:10")  # the framework's own check
    assert not invalid_input.glue_failure(TypeError("ufunc 'xlogy' not supported"), "adapters/numpy_scipy.py:80")


def test_the_minimum_environment_is_the_floor_pyproject_accepts():
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints" / "minimum.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for req in project["dependencies"] + [r for rs in project["optional-dependencies"].values() for r in rs]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", req)
        if m:
            bounds[m[1]] = m[2]
    for pkg, version in pins.items():
        assert bounds.get(pkg) == version, f"{pkg}: pyproject says >={bounds.get(pkg)}, minimum.txt pins {version}"
