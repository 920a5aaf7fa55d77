"""The run's command-line options: declared for pytest, then read and validated once into RunOptions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters import BUILTIN
from cases import interactions
from xentcheck.bench import precision, runner, sweep
from xentcheck.bench.plan import BenchOptions

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESULTS = Path("results/results.json")
DEFAULT_REPORT = Path("results/report.html")
DEFAULT_EXPECTATIONS = ROOT / "suites" / "expectations.toml"
#: what a run checks without --frameworks: every built-in framework, Keras on each of its backends
DEFAULT_FRAMEWORKS = tuple(BUILTIN)
#: Keras on JAX, PyTorch and NumPy: a run that does not name them (and has no --all-dtypes) checks their
#: slice, the default run's budget: the catalog's conformance checks in float32 (Keras's default floatx)
#: of the loss classes (SLICE_LEAVES_OUT), unreduced where the binding offers it (Keras's reductions are
#: backend-independent code over the per-example losses, checked in every reduction on TensorFlow); no
#: interaction cases, relations, stability sweep or snippets. Named, they run everything.
FLOATX_SLICE = ("keras[jax]", "keras[torch]", "keras[numpy]")
#: bindings the slice leaves out: the loss functions, keras.ops and the metrics run the same backend code
#: as the loss classes, which call the functions, which call keras.ops; the training step (the loss
#: classes under the backend's trainer) is checked on TensorFlow, and on the other backends when they are
#: named: on JAX it compiles a train function per shape, 13 of keras[jax]'s 16 s (docs/performance.md)
SLICE_LEAVES_OUT = (
    "keras.binary_crossentropy.",
    "keras.categorical_crossentropy.",
    "keras.sparse_categorical_crossentropy.",
    "keras.ops.",
    "keras.metrics.",
    "keras.Model.train_on_batch.",
)
#: JAX computes in float32 unless ``jax_enable_x64`` is set, which it leaves off by default: a run that
#: does not name jax (and has no --all-dtypes) checks its cases and stability sweep in the dtypes JAX
#: users get without it; its float64 (x64 mode) runs when jax is named or with --all-dtypes (it was
#: 15.6 s of a worker's time, the largest share of the default run's budget: docs/performance.md)
X64_SLICE = ("jax",)


def add_options(parser: pytest.Parser) -> None:
    """The ``xentcheck`` option group of ``pytest --help``."""
    g = parser.getgroup("xentcheck", "xentcheck conformance suite")
    g.addoption(
        "--frameworks",
        default=None,
        help=f"comma-separated frameworks to check (default: {', '.join(DEFAULT_FRAMEWORKS)}; Keras "
        f"on each backend runs in a worker process of its own, and {', '.join(FLOATX_SLICE)} check "
        f"float32 only, and {', '.join(X64_SLICE)} without float64, unless named here or --all-dtypes)",
    )
    g.addoption(
        "--adapter",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="add an external adapter object (repeatable), tested like the built-in ones",
    )
    g.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="device to run the bindings on")
    g.addoption(
        "--modes",
        default="eager",
        metavar="eager,compiled",
        help="execution modes to check: eager (default), compiled (torch.compile, "
        "tf.function(jit_compile=True), jax.jit; one compile per binding and problem), or both",
    )
    g.addoption(
        "--all-dtypes",
        action="store_true",
        help="run every case in float16, bfloat16, float32 and float64, and the relations in float64 "
        "(default: the dtypes each case declares)",
    )
    g.addoption(
        "--large-vocab",
        action="store_true",
        help="also run the linear_ce cases of real vocabularies (32000 to 256000 classes, `large = true` "
        "in their linear table): seconds each in Triton's interpreter, so outside the default run",
    )
    g.addoption(
        "--one-per-category",
        action="store_true",
        help="run only the first case of each category for each op and target kind: with --all-dtypes "
        "and --modes=eager,compiled, the shortest run that fills the coverage matrix",
    )
    g.addoption(
        "--interactions",
        default=interactions.MIXED,
        metavar="STRENGTH",
        help="interaction cases generated from each binding's capabilities: mixed (default) covers "
        "every triple of values of the options that change the mathematics (weights, ignore_index, "
        "smoothing, target kind, spatial and layout, reduction, masks) and every pair of all; 2 every "
        "pair; 3 every triple (a longer run); 0 none",
    )
    g.addoption(
        "--probe-capabilities",
        action="store_true",
        help="also call every binding with each target kind, option, reduction and dtype it does not "
        "declare, and show in the capability table where the API takes more than declared or a "
        "documented parameter raises (informational: never fails the run)",
    )
    g.addoption(
        "--relation-examples",
        type=int,
        default=None,
        metavar="N",
        help="hypothesis inputs drawn per binding and relation (default 2, in float32; given, also in float64)",
    )
    g.addoption(
        "--fuzz",
        action="store_true",
        help="long property run: random (not derandomized) draws, 300 per binding and relation",
    )
    g.addoption("--results", default=None, help=f"where to write the results JSON (default {DEFAULT_RESULTS})")
    g.addoption(
        "--report",
        default=None,
        help=f"where to write the HTML report (default: beside --results, same name with .html; "
        f"without --results {DEFAULT_REPORT})",
    )
    g.addoption(
        "--cases",
        default=[],
        action="append",
        metavar="PATH",
        help="case declarations from outside the repository: a .toml file or a folder of them "
        "(repeatable; explicit arrays may sit beside them as .npy/.npz, see cases/README.md)",
    )
    g.addoption(
        "--snippets-with-inputs",
        action="store_true",
        default=False,
        help="give failing checks of --cases declarations reproduction snippets too (they paste the "
        "case's arrays into the results and the report; left out by default: the arrays may be "
        "private data and a report is made to be shared)",
    )
    g.addoption(
        "--values-outside",
        action="store_true",
        default=False,
        help="let a case's values_file name a file outside its declaration's folder (by default it is "
        "confined there: a shared case folder cannot read other files)",
    )
    g.addoption(
        "--case",
        dest="case_names",
        default=[],
        action="append",
        metavar="NAME",
        help="run only this case (its exact name; repeatable): its checks, or the relation or stability "
        "axis of that name; unlike -k, no other name that contains it",
    )
    g.addoption(
        "--binding",
        dest="binding_names",
        default=[],
        action="append",
        metavar="NAME",
        help="run only this binding (its exact name, e.g. torch.nn.functional.cross_entropy; repeatable)",
    )
    g.addoption(
        "--expectations",
        default=None,
        action="append",
        help="expectations registry file(s) (default suites/expectations.toml)",
    )
    g.addoption(
        "--wandb",
        action="store_true",
        help="also log the run to Weights & Biases (offline unless WANDB_MODE is set; pip install -e '.[wandb]')",
    )
    g.addoption(
        "--baseline",
        default=None,
        metavar="PATH",
        help="compare this run with an earlier results file; a regression fails the run",
    )
    g.addoption(
        "--bench",
        action="store_true",
        default=False,
        help="also run the benchmark sweep (add --benchmark-only to skip the conformance checks)",
    )
    g.addoption(
        "--bench-sizes",
        default="quick",
        metavar="SWEEP|NxC,...",
        help=f"sizes to time: {', '.join(sweep.SWEEPS)} or a list like 32x10,4096x32000 (default quick)",
    )
    g.addoption(
        "--bench-linear-sizes",
        default="auto",
        metavar="auto|SWEEP|NxDxV,...",
        help="linear_ce sizes to time (hidden states N x D, classifier V x D): auto (the sweep --bench-sizes "
        f"names, none for a list), {', '.join(sweep.LINEAR_SWEEPS)} or a list like 1024x256x32000",
    )
    g.addoption("--bench-modes", default="eager,compiled", help="modes to time (default eager,compiled)")
    g.addoption(
        "--bench-passes", default="forward,forward+backward", help="passes to time (default forward,forward+backward)"
    )
    g.addoption("--bench-dtypes", default="float32", help="dtypes to time (default float32)")
    g.addoption(
        "--bench-threads",
        type=int,
        default=None,
        help="threads for every framework (default: the CPUs this process may use)",
    )
    g.addoption(
        "--bench-time",
        type=float,
        default=0.5,
        help="seconds of timed rounds per benchmark before it stops short of --bench-precision "
        "(at least 6 rounds, at most 200; default 0.5)",
    )
    g.addoption(
        "--bench-precision",
        type=float,
        default=precision.PRECISION,
        help="stop timing a benchmark once the 95%% interval of its median is within this fraction "
        f"of it (default {precision.PRECISION})",
    )
    g.addoption(
        "--bench-max-call",
        type=float,
        default=runner.MAX_CALL_S,
        help="a configuration whose call takes longer is timed in one round, without an interval, "
        f"and listed as such in the report (default {runner.MAX_CALL_S} s; 0: time every one "
        "in full)",
    )


def user_path(path: str | Path) -> Path:
    """A path the user passed, made absolute at start-up: against the folder ``./run`` was called from
    (``XENTCHECK_CALLER_DIR``; ``./run`` itself works from the repository), else the working folder."""
    p = Path(path).expanduser()
    caller = os.environ.get("XENTCHECK_CALLER_DIR")
    return p if p.is_absolute() else (Path(caller) / p if caller else p.absolute())


@dataclass(frozen=True)
class RunOptions:
    """The validated options of one run (a bad value is a one-line ``pytest.UsageError``)."""

    frameworks: tuple[str, ...]
    #: --frameworks named them (a named framework that is not installed fails the run)
    frameworks_named: bool
    adapters: tuple[str, ...]
    device: str
    modes: tuple[str, ...]
    all_dtypes: bool
    one_per_category: bool
    fuzz: bool
    relation_examples: int
    #: the relations draw in float64 too: asked for with --fuzz, --relation-examples or --all-dtypes
    wide_relations: bool
    results: Path
    report: Path
    expectations: tuple[Path, ...]
    baseline: str | None
    cases: tuple[Path, ...] = ()
    wandb: bool = False
    #: strength of the interaction cases' covering array: "mixed", 2, 3 or 0 (none)
    interactions: int | str = "mixed"
    probe_capabilities: bool = False
    #: --values-outside: a case's values_file may name a file outside its declaration's folder
    values_outside: bool = False
    #: frameworks this run checks in their slice only (see FLOATX_SLICE)
    sliced: tuple[str, ...] = ()
    #: frameworks this run checks without float64 (see X64_SLICE)
    without_x64: tuple[str, ...] = ()
    #: --case and --binding: exact names this run is narrowed to (empty: no narrowing)
    case_names: tuple[str, ...] = ()
    binding_names: tuple[str, ...] = ()
    #: the --bench* values (None: no --bench); BenchPlan validates them
    bench: BenchOptions | None = None
    #: --large-vocab: the linear_ce cases marked ``large`` run too
    large_vocab: bool = False

    def dtypes_for(self, framework: str, dtypes) -> tuple[str, ...]:
        """``dtypes`` as this run checks them for ``framework`` (a sliced one: float32 only; one without
        x64: no float64)."""
        if framework in self.sliced:
            return tuple(d for d in dtypes if d == "float32")
        return tuple(d for d in dtypes if framework not in self.without_x64 or d != "float64")

    def reductions_for(self, framework: str, offered: frozenset[str], reductions) -> tuple[str, ...]:
        """A case's ``reductions`` as this run checks them for a binding of ``framework`` that offers
        ``offered`` (a sliced one: ``none`` only, where the binding has it)."""
        if framework in self.sliced and "none" in offered:
            return tuple(r for r in reductions if r == "none")
        return tuple(reductions)

    def in_run(self, framework: str, binding: str) -> bool:
        """Whether this run checks ``binding`` of ``framework`` (a sliced framework: not SLICE_LEAVES_OUT)."""
        if self.binding_names and binding not in self.binding_names:
            return False
        return framework not in self.sliced or not binding.startswith(SLICE_LEAVES_OUT)

    def case_chosen(self, name: str) -> bool:
        """Whether ``name`` (a case, relation or stability axis) is in the run: every name, or those --case names."""
        return not self.case_names or name in self.case_names

    def all_layers(self, framework: str) -> bool:
        """Whether ``framework`` gets the interaction cases, relations, stability sweep and snippets."""
        return framework not in self.sliced

    @classmethod
    def from_config(cls, config: pytest.Config) -> RunOptions:
        opt = config.getoption
        names = opt("frameworks")
        # --frameworks= (empty) runs no built-in framework: only --adapter ones
        frameworks = DEFAULT_FRAMEWORKS if names is None else tuple(n.strip() for n in names.split(",") if n.strip())
        unknown = [n for n in frameworks if n not in BUILTIN]
        if unknown:
            raise pytest.UsageError(f"--frameworks: unknown framework {unknown[0]!r}; known: {', '.join(BUILTIN)}")
        fuzz = opt("fuzz")
        given = opt("relation_examples")
        examples = given if given is not None else (300 if fuzz else 2)
        if examples < 1:
            raise pytest.UsageError("--relation-examples: give a positive number of inputs, e.g. 20")
        modes = tuple(m.strip() for m in opt("modes").split(",") if m.strip())
        if not modes or set(modes) - {"eager", "compiled"}:
            raise pytest.UsageError(f"--modes={opt('modes')}: give eager, compiled or eager,compiled")
        try:
            strength = interactions.parse_strength(opt("interactions"))
        except interactions.InteractionError as e:
            raise pytest.UsageError(str(e)) from None
        # absolute at start-up: a binding that changes the working folder cannot move where the run writes
        results = user_path(opt("results")) if opt("results") else DEFAULT_RESULTS.absolute()
        report = (
            user_path(opt("report"))
            if opt("report")
            else (results.with_suffix(".html") if opt("results") else DEFAULT_REPORT.absolute())
        )
        if results.resolve() == report.resolve():
            raise pytest.UsageError(
                f"--results and --report are the same file ({results}); the report would "
                f"overwrite the results: give the report another path"
            )
        return cls(
            frameworks=frameworks,
            frameworks_named=names is not None,
            adapters=tuple(opt("adapter")),
            device=opt("device"),
            modes=modes,
            all_dtypes=opt("all_dtypes"),
            one_per_category=opt("one_per_category"),
            fuzz=fuzz,
            relation_examples=examples,
            wide_relations=bool(fuzz or given is not None or opt("all_dtypes")),
            results=results,
            report=report,
            expectations=tuple(user_path(p) for p in opt("expectations") or ()) or (DEFAULT_EXPECTATIONS,),
            baseline=opt("baseline") and str(user_path(opt("baseline"))),
            cases=tuple(user_path(p) for p in opt("cases")),
            wandb=opt("wandb"),
            values_outside=opt("values_outside"),
            interactions=strength,
            probe_capabilities=opt("probe_capabilities"),
            sliced=() if names is not None or opt("all_dtypes") else FLOATX_SLICE,
            without_x64=() if names is not None or opt("all_dtypes") else X64_SLICE,
            case_names=tuple(opt("case_names")),
            binding_names=tuple(opt("binding_names")),
            large_vocab=opt("large_vocab"),
            bench=BenchOptions(
                sizes=opt("bench_sizes"),
                linear_sizes=opt("bench_linear_sizes"),
                modes=opt("bench_modes"),
                passes=opt("bench_passes"),
                dtypes=opt("bench_dtypes"),
                threads=opt("bench_threads"),
                time_s=opt("bench_time"),
                precision=opt("bench_precision"),
                max_call_s=opt("bench_max_call"),
                device=opt("device"),
            )
            if opt("bench")
            else None,
        )
