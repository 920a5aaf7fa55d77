"""A fuzzer that looks where the catalog doesn't: Hypothesis strategies that draw whole problems for a
binding's declared capabilities, biased toward special values, and the grouping of what they find.

Every draw is judged as a catalog case is (the oracle, the registry's conditions on the input): a draw
where a binding fails or errs is a finding; Hypothesis shrinks it to a minimal example. Findings are
grouped by (binding, check, the properties of the input that hold: xentcheck.conditions), so one
behaviour is one finding however many draws show it. The default run draws a fixed, derandomised few
per binding; ``--fuzz`` runs a campaign; HypoFuzz runs long ones (docs/fuzzing.md).
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from . import conditions
from .problem import CATEGORICAL_OPS, Problem, round_to
from .protocol import Capabilities

#: the options the generator draws for every binding that declares them (pos_weight and where= are drawn
#: after these, only for the bindings that declare them, so the others' derandomised draws stay as they were)
FUZZ_OPTIONS = ("class_weight", "sample_weight", "ignore_index", "label_smoothing", "spatial", "channels_first")
#: drawn after FUZZ_OPTIONS: a per-class positive weight (binary ops) and optax's where= mask (softmax_ce)
LATE_OPTIONS = ("pos_weight", "where")
IGNORE = -100


#: the ops whose problems the fuzzer draws (linear_ce's X and W are not drawn yet)
OPS = ("softmax_ce", "categorical_ce", "sigmoid_bce", "bce", "nll")


#: the Hypothesis settings profile of the fuzz target (registered by the run, read where the test is defined)
PROFILE = "xentcheck-fuzz"
#: the health checks the fuzz target suppresses: draws are slow (a framework call each) and filtered by the
#: capabilities. Not nested_given: HypoFuzz refuses a test that suppresses it.
SUPPRESSED = [h for h in HealthCheck if h.name != "nested_given"]


#: the environment variable naming a shared example database folder for campaigns on several machines
DATABASE_ENV = "XENTCHECK_FUZZ_DATABASE"
#: the settings profile loaded as Hypothesis's default when a shared database is named (HypoFuzz requires a
#: fuzz target's database to be the default one)
SHARED_PROFILE = "xentcheck-fuzz-shared-database"


def register_profile(campaign: bool, draws: int, database: str | None = None) -> None:
    """Register the fuzz target's settings profile (not loaded: only the fuzz target uses it).
    ``campaign``: random draws kept in Hypothesis's default example database (what HypoFuzz requires);
    otherwise ``draws`` derandomised draws, no database (the default run's fixed slice). ``database``: a
    folder shared by several machines' campaigns (a network share): it becomes Hypothesis's default
    database too, so HypoFuzz accepts it, and every machine replays and extends the others' corpus."""
    if campaign:
        # derandomize said outright: under CI=1 Hypothesis loads its "ci" profile (derandomised), and a
        # profile inherits the loaded one; a derandomised campaign replays one sequence forever
        if database:
            from hypothesis.database import DirectoryBasedExampleDatabase

            settings.register_profile(
                SHARED_PROFILE, database=DirectoryBasedExampleDatabase(database), derandomize=False
            )
            settings.load_profile(SHARED_PROFILE)
        settings.register_profile(
            PROFILE, max_examples=draws, deadline=None, suppress_health_check=SUPPRESSED, derandomize=False
        )
    else:
        settings.register_profile(
            PROFILE,
            derandomize=True,
            database=None,
            max_examples=draws,
            deadline=None,
            suppress_health_check=SUPPRESSED,
        )


def profile() -> settings:
    """The registered fuzz profile (the derandomised slice's when the run registered none)."""
    try:
        return settings.get_profile(PROFILE)
    except InvalidArgument:
        register_profile(False, 2)
        return settings.get_profile(PROFILE)


def _largest(dtype: str) -> float:
    return {
        "float16": 65504.0,
        "bfloat16": 3.3895313892515355e38,
        "float32": 3.4028234663852886e38,
        "float64": 1.7976931348623157e308,
    }[dtype]


def _smallest_subnormal(dtype: str) -> float:
    return {"float16": 2.0**-24, "bfloat16": 2.0**-133, "float32": 2.0**-149, "float64": 5e-324}[dtype]


def special_values(dtype: str) -> list[float]:
    """Values that break naive kernels: exact and signed zeros, subnormals, the largest finite values,
    +-inf and NaN (ties for the maximum come from drawing a value twice)."""
    big, tiny = _largest(dtype), _smallest_subnormal(dtype)
    return [0.0, -0.0, tiny, -tiny, 1.0, -1.0, big, -big, np.inf, -np.inf, np.nan]


def logit_values(dtype: str) -> st.SearchStrategy[float]:
    """A logit: mostly ordinary, often special."""
    return st.one_of(
        st.sampled_from(special_values(dtype)),
        st.floats(-30.0, 30.0, allow_nan=False, allow_infinity=False),
        st.sampled_from([2.5, 7.0]),
    )


@st.composite
def problems(draw, caps: Capabilities, dtypes: frozenset[str]) -> Problem:
    """One problem for the binding's op (``caps.op``) within its declared target kinds, reductions and
    options (``caps``) and the given ``dtypes`` (the run's dtypes of those the binding declares)."""
    op = caps.op
    dtype = draw(st.sampled_from(sorted(dtypes)))
    kind = draw(st.sampled_from(sorted(caps.targets)))
    reduction = draw(st.sampled_from(sorted(caps.reductions)))
    on = {o for o in sorted(set(caps.options) & set(FUZZ_OPTIONS)) if draw(st.booleans())}
    on |= {o for o in sorted(set(caps.options) & set(LATE_OPTIONS)) if draw(st.booleans())}
    categorical = op in CATEGORICAL_OPS
    if kind != "index":
        on.discard("ignore_index")
    if not categorical:
        on -= {"spatial", "channels_first", "ignore_index"}
    if "channels_first" in on:
        on.add("spatial")
    n = draw(st.integers(0 if draw(st.integers(0, 9)) == 0 else 1, 4))  # an empty batch one draw in ten
    c = draw(st.integers(1, 5)) if categorical else draw(st.integers(1, 3))
    shape = (n, draw(st.integers(1, 3)), c) if "spatial" in on else (n, c)
    size = int(np.prod(shape))
    z = round_to(
        np.array(draw(st.lists(logit_values(dtype), min_size=size, max_size=size)), dtype=np.float64).reshape(shape),
        dtype,
    )
    x = z
    with np.errstate(all="ignore"):
        if op == "categorical_ce":
            m = np.nanmax(np.where(np.isnan(z), -np.inf, z), axis=-1, keepdims=True)
            e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
            x = round_to(e / e.sum(axis=-1, keepdims=True), dtype)
        elif op == "bce":
            x = round_to(1.0 / (1.0 + np.exp(-z)), dtype)
        elif op == "nll":
            x = z
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "index":
        target = rng.integers(0, c, size=shape[:-1]).astype(np.int64)
        if "ignore_index" in on and target.size:
            target = np.where(rng.random(target.shape) < 0.4, IGNORE, target)
    elif kind == "onehot":
        target = np.eye(c)[rng.integers(0, c, size=shape[:-1])]
    elif kind == "binary":
        target = (rng.random(shape) < 0.5).astype(np.float64)
    else:
        target = rng.dirichlet(np.ones(c), size=shape[:-1]) if categorical else rng.random(shape)
        target = round_to(target, dtype)
    cw = round_to(rng.uniform(0.25, 2.0, size=c), dtype) if "class_weight" in on else None
    pw = round_to(rng.uniform(0.25, 4.0, size=shape[-1]), dtype) if "pos_weight" in on and not categorical else None
    # where=: most classes take part; now and then a row with none (it contributes nothing)
    where = (rng.random(shape) < 0.8) if "where" in on and op == "softmax_ce" else None
    sw = round_to(rng.uniform(0.25, 2.0, size=n), dtype) if "sample_weight" in on else None
    return Problem(
        case="fuzz",
        op=op,
        dtype=dtype,
        x=x,
        target=target,
        target_kind=kind,
        reduction=reduction,
        class_weight=cw,
        sample_weight=sw,
        pos_weight=pw,
        where=where,
        ignore_index=IGNORE if "ignore_index" in on else None,
        label_smoothing=0.1 if "label_smoothing" in on else 0.0,
        category="fuzz",
        channels_first="channels_first" in on,
    )


def finding_key(binding: str, check: str, problem: Problem) -> tuple:
    """What groups draws into one finding: the binding, the check, and the properties of the input that
    hold (true booleans, non-empty sets, the dtype and target kind)."""
    props = conditions.describe(problem)
    held = tuple(sorted(k for k, v in props.items() if v is True or (isinstance(v, list) and v and k != "options")))
    return binding, check, problem.dtype, problem.target_kind, held


def repro_line(problem: Problem) -> str:
    """The draw as a Python expression that rebuilds it: ``Problem(...)`` with every field the fuzzer
    sets (arrays as ``np.array`` literals; evaluate it with ``nan`` and ``inf`` bound to NumPy's, e.g.
    ``from numpy import nan, inf``)."""

    def arr(a):
        if a is None:
            return "None"
        if a.size == 0:  # a list literal loses an empty array's shape
            return f"np.zeros({a.shape!r}, dtype={str(a.dtype)!r})"
        return f"np.array({a.tolist()!r})"

    return (
        f"Problem(case='fuzz', op={problem.op!r}, dtype={problem.dtype!r}, reduction={problem.reduction!r}, "
        f"target_kind={problem.target_kind!r}, x={arr(problem.x)}, target={arr(problem.target)}, "
        f"class_weight={arr(problem.class_weight)}, sample_weight={arr(problem.sample_weight)}, "
        f"pos_weight={arr(problem.pos_weight)}, where={arr(problem.where)}, "
        f"ignore_index={problem.ignore_index!r}, label_smoothing={problem.label_smoothing!r}, "
        f"channels_first={problem.channels_first!r})"
    )
