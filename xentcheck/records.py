"""The typed records of a results document: one dataclass per kind, one serialisation, one parser.

A run builds records only through these classes; :meth:`to_json` turns one into the object the
results schema (``results.schema.json``) describes, and :meth:`from_json` reads it back, so the
reports work on the same types the run produced. ``tests/test_results.py`` checks that the schema
and these classes name the same fields.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "OUTCOMES",
    "BenchRecord",
    "BenchSection",
    "CheckRecord",
    "Errors",
    "InteractionCoverage",
    "FuzzFinding",
    "FuzzRecord",
    "FuzzSection",
    "RelationRecord",
    "Results",
    "StabilityPoint",
    "StabilityRecord",
    "StrengthCoverage",
    "summarize",
]

OUTCOMES = ("pass", "deviation", "fail", "unsupported", "error")


@functools.cache
def _json_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, JSON key) of each field of ``cls`` that is written (looked up once per class: a run
    converts tens of thousands of records, and ``dataclasses.fields`` is slow)."""
    return tuple((f.name, f.metadata.get("key", f.name)) for f in fields(cls) if f.metadata.get("json", True))


def _json(obj: Any, skip_none: frozenset[str]) -> dict:
    """The dataclass's fields as JSON values, leaving out the optional ones that are None."""
    out = {}
    for name, key in _json_fields(type(obj)):
        v = getattr(obj, name)
        if v is None and name in skip_none:
            continue
        out[key] = v.to_json() if hasattr(v, "to_json") else v
    return out


def _kwargs(cls: type, d: dict) -> dict:
    """Constructor arguments for ``cls`` from a JSON object (keys the class does not know are dropped:
    the schema has validated the document already)."""
    return {name: d[key] for name, key in _json_fields(cls) if key in d}


@dataclass(frozen=True)
class Errors:
    """A check's measured errors (strict JSON: an infinite error is stored as the float64 max)."""

    max_abs: float
    max_rel: float
    tol_units: float
    eps_units: float
    mismatches: int

    def to_json(self) -> dict:
        return _json(self, frozenset())

    @classmethod
    def from_json(cls, d: dict | None) -> Errors | None:
        return None if d is None else cls(**_kwargs(cls, d))


def _run_label() -> Any:
    """Not stored in results files: the report's label of the run a record came from."""
    return field(default="", compare=False, metadata={"json": False})


@dataclass(frozen=True)
class CheckRecord:
    """One check of one binding on one problem: its outcome, reason and measured errors. Made once,
    by :func:`xentcheck.check.record`, and not changed after (frozen).

    ``errors`` is measured against the mathematics; ``errors_vs_expectation`` against the registry
    entry's documented behaviour (deviations only); ``vs_eager`` is how far a compiled result lies
    from the eager one. ``repro`` and ``traceback`` come with fail and error outcomes."""

    id: str
    framework: str
    binding: str
    api: str
    op: str | None
    case: str
    category: str
    dtype: str
    mode: str
    device: str
    reduction: str
    target: str | None
    check: str
    outcome: str = "unsupported"
    reason: str = ""
    expectation: str | None = None
    errors: Errors | None = None
    result_dtype: str | None = None
    compute_dtype: str | None = None
    duration_s: float = 0.0
    expectation_differs: bool | None = None
    errors_vs_expectation: Errors | None = None
    vs_eager: dict | None = None
    repro: str | None = None
    traceback: str | None = None
    #: the exception the binding raised ({"type", "at"}): the errors layer's refusals and error outcomes,
    #: so a change of exception type between versions shows in the diff
    raised: dict | None = None
    #: fail and deviation records: the worst elements against the mathematics, each {"at", "expected",
    #: "got", "bound"} (non-finite numbers as "nan", "inf", "-inf"; bound null where none applies)
    worst: list | None = None
    run: str = _run_label()

    OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"expectation_differs", "errors_vs_expectation", "vs_eager", "repro", "traceback", "raised", "worst"}
    )

    def to_json(self) -> dict:
        return _json(self, self.OPTIONAL)

    @classmethod
    def from_json(cls, d: dict) -> CheckRecord:
        if "relation" in d and cls is CheckRecord:
            return RelationRecord.from_json(d)
        kw = _kwargs(cls, d)
        for key in ("errors", "errors_vs_expectation"):
            if key in kw:
                kw[key] = Errors.from_json(kw[key])
        return cls(**kw)


@dataclass(frozen=True)
class RelationRecord(CheckRecord):
    """A relation (an identity inside one framework) checked on drawn inputs; ``case`` names the
    relation and ``relation`` states it."""

    relation: str = ""


@dataclass(frozen=True)
class StabilityPoint:
    """One point of a stability sweep: numbers, or "inf"/"-inf"/"nan" strings where not finite."""

    x: float
    value: float | str
    reference: float | str
    value_units: float | str
    value_status: str
    grad_units: float | str | None = None
    grad_status: str | None = None

    def to_json(self) -> dict:
        return _json(self, frozenset({"grad_units", "grad_status"}))

    @classmethod
    def from_json(cls, d: dict) -> StabilityPoint:
        return cls(**_kwargs(cls, d))


@dataclass(frozen=True)
class StabilityRecord:
    """One binding along one stability axis in one dtype (the report's stability charts)."""

    id: str
    framework: str
    binding: str
    op: str
    axis: str
    label: str
    dtype: str
    device: str
    outcome: str = "ok"
    reason: str = ""
    expectations: list[str] = field(default_factory=list)
    points: list[StabilityPoint] = field(default_factory=list)
    run: str = _run_label()

    def to_json(self) -> dict:
        d = _json(self, frozenset())
        d["points"] = [p.to_json() for p in self.points]
        return d

    @classmethod
    def from_json(cls, d: dict) -> StabilityRecord:
        kw = _kwargs(cls, d)
        kw["points"] = [StabilityPoint.from_json(p) for p in kw.get("points", [])]
        return cls(**kw)


@dataclass
class BenchRecord:
    """One benchmark: a binding timed at one size, dtype, mode and pass. The measured fields are set
    when ``outcome`` is ``ok`` (``stats`` is the pytest-benchmark summary; ``samples`` the round times)."""

    id: str
    framework: str
    binding: str
    api: str
    op: str
    mode: str
    dtype: str
    pass_: str = field(metadata={"key": "pass"})
    batch: int = 0
    classes: int = 0
    device: str = "cpu"
    threads: int = 1
    outcome: str = "ok"
    reason: str = ""
    target: str | None = None
    reduction: str | None = None
    stats: dict | None = None
    samples: list[float] | None = None
    first_call_s: float | None = None
    compile_s: float | None = None
    bytes: int | None = None
    gbps: float | None = None
    floor_s: float | None = None
    floor_bound: str | None = None
    floor_multiple: float | None = None
    peak_bytes: int | None = None
    peak_kind: str | None = None
    overhead: dict | None = None
    #: linear_ce: the hidden size D (``batch`` is N, ``classes`` is V)
    hidden: int | None = None
    #: linear_ce: the FLOP floor at the measured matmul rate, the memory floor and the peak against it
    linear: dict | None = None

    #: written only once measured (compile_s is null in eager mode, so it goes with stats)
    MEASURED: ClassVar[frozenset[str]] = frozenset(
        {
            "target",
            "reduction",
            "stats",
            "samples",
            "first_call_s",
            "compile_s",
            "bytes",
            "gbps",
            "floor_s",
            "floor_bound",
            "floor_multiple",
            "peak_bytes",
            "peak_kind",
        }
    )

    def to_json(self) -> dict:
        d = _json(self, self.MEASURED | {"overhead", "hidden", "linear"})
        if self.stats is not None:
            d["compile_s"] = self.compile_s
        return d

    @classmethod
    def from_json(cls, d: dict) -> BenchRecord:
        return cls(**_kwargs(cls, d))


@dataclass
class BenchSection:
    """The results document's ``benchmarks``: the sweep's settings, the floor and the records."""

    threads: dict
    sizes: list[list[int]]
    modes: list[str]
    passes: list[str]
    dtypes: list[str]
    budget_s: float
    floor: dict | None
    records: list[BenchRecord]
    #: the target relative half-width of each median's 95% interval, and the longest call timed in
    #: full (None in files written before adaptive rounds)
    precision: float | None = None
    max_call_s: float | None = None
    #: linear_ce sizes (N, D, V), the matmul rate per framework and dtype, and the sweep's peak memory
    #: (None in files written before linear_ce joined the sweep)
    linear_sizes: list[list[int]] | None = None
    matmul: dict | None = None
    memory: dict | None = None

    def to_json(self) -> dict:
        d = _json(self, frozenset({"linear_sizes", "matmul", "memory"}))
        d["records"] = [r.to_json() for r in sorted(self.records, key=lambda r: r.id)]
        return d

    @classmethod
    def from_json(cls, d: dict) -> BenchSection:
        kw = _kwargs(cls, d)
        kw["records"] = [BenchRecord.from_json(r) for r in kw.get("records", [])]
        return cls(**kw)


@dataclass(frozen=True)
class StrengthCoverage:
    """How far a binding's interaction cases cover the combinations of ``strength`` values of
    ``factors``: ``tuples`` combinations exist, ``covered`` meet in a case the binding runs, the
    ``ruled_out`` ones no problem can have (each with the reason) and the ``missing`` ones are gaps."""

    strength: int
    factors: tuple[str, ...]
    tuples: int
    covered: int
    #: [{"tuple": ["name=value", ...], "reason": "..."}]
    ruled_out: tuple[dict, ...] = ()
    #: ["name=value", ...] for each combination neither covered nor ruled out
    missing: tuple[tuple[str, ...], ...] = ()

    def to_json(self) -> dict:
        return {
            "strength": self.strength,
            "factors": list(self.factors),
            "tuples": self.tuples,
            "covered": self.covered,
            "ruled_out": [{"tuple": list(r["tuple"]), "reason": r["reason"]} for r in self.ruled_out],
            "missing": [list(m) for m in self.missing],
        }

    @classmethod
    def from_json(cls, d: dict) -> StrengthCoverage:
        return cls(
            strength=d["strength"],
            factors=tuple(d["factors"]),
            tuples=d["tuples"],
            covered=d["covered"],
            ruled_out=tuple({"tuple": tuple(r["tuple"]), "reason": r["reason"]} for r in d.get("ruled_out", [])),
            missing=tuple(tuple(m) for m in d.get("missing", [])),
        )


@dataclass(frozen=True)
class InteractionCoverage:
    """One binding's interaction cases (``environment.interactions``): the strength the run asked for
    (``"mixed"``, ``"2"`` or ``"3"``), how many cases the covering array has, the factors and their
    values, and the coverage at each strength it guarantees."""

    strength: str
    cases: int
    factors: dict[str, list[str]]
    by_strength: tuple[StrengthCoverage, ...]

    def to_json(self) -> dict:
        return {
            "strength": self.strength,
            "cases": self.cases,
            "factors": {k: list(v) for k, v in self.factors.items()},
            "by_strength": [c.to_json() for c in self.by_strength],
        }

    @classmethod
    def from_json(cls, d: dict) -> InteractionCoverage:
        """Also reads a file written before coverage per strength: its pair coverage is the 2-way one."""
        factors = {k: list(v) for k, v in d.get("factors", {}).items()}
        if "by_strength" in d:
            by = tuple(StrengthCoverage.from_json(c) for c in d["by_strength"])
        else:
            by = (
                StrengthCoverage(
                    strength=2,
                    factors=tuple(factors),
                    tuples=d["pairs"],
                    covered=d["covered"],
                    ruled_out=tuple({"tuple": tuple(r["pair"]), "reason": r["reason"]} for r in d["ruled_out"]),
                    missing=tuple(tuple(m) for m in d["missing"]),
                ),
            )
        return cls(strength=str(d["strength"]), cases=d["cases"], factors=factors, by_strength=by)


@dataclass
class FuzzFinding:
    """One behaviour the fuzzer found: draws of one binding whose check failed or erred with the same
    finding key (xentcheck.fuzz.finding_key: binding, check, dtype, target kind, the input's properties
    that hold), with the smallest draw that showed it (fewest elements, then shortest repro)."""

    key: list
    check: str
    outcome: str
    reason: str
    count: int
    repro: str
    #: elements in the smallest draw's input (the measure the smallest repro is kept by)
    size: int

    def to_json(self) -> dict:
        return _json(self, frozenset())

    @classmethod
    def from_json(cls, d: dict) -> FuzzFinding:
        return cls(**_kwargs(cls, d))


@dataclass
class FuzzRecord:
    """What the fuzzer saw of one binding (one process's, or several merged): draws, the seconds spent
    judging them and the wall seconds between consecutive draws (the engine's own work included), the
    outcomes of the checks, the registry entries that turned a check into a documented deviation, and
    the findings by key."""

    framework: str
    binding: str
    op: str
    draws: int = 0
    seconds: float = 0.0
    wall_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    findings: list[FuzzFinding] = field(default_factory=list)

    @property
    def draws_per_s(self) -> float | None:
        """Draws per second of judging (framework call and oracle)."""
        return round(self.draws / self.seconds, 2) if self.seconds > 0 else None

    @property
    def draws_per_wall_s(self) -> float | None:
        """Draws per second as the campaign got them (generation and the engine's bookkeeping included)."""
        return round(self.draws / self.wall_seconds, 2) if self.wall_seconds > 0 else None

    def add(self, outcome: str, expectation: str | None) -> None:
        """Count one judged check (its outcome, and the registry entries of a documented deviation)."""
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if outcome == "deviation" and expectation:
            for name in expectation.split("+"):
                self.fired[name] = self.fired.get(name, 0) + 1

    def find(self, f: FuzzFinding) -> bool:
        """Count ``f.count`` draws of a finding (a new key, or one seen before, whose smallest draw is
        kept); returns whether its key is new here."""
        for g in self.findings:
            if g.key == f.key:
                g.count += f.count
                if (f.size, len(f.repro)) < (g.size, len(g.repro)):
                    g.repro, g.size, g.reason, g.outcome = f.repro, f.size, f.reason, f.outcome
                return False
        self.findings.append(FuzzFinding(**{k.name: getattr(f, k.name) for k in fields(f)}))
        return True

    def merge(self, other: FuzzRecord) -> None:
        """Add ``other``'s draws, seconds, outcomes, fired entries and findings (same binding)."""
        self.draws += other.draws
        self.seconds += other.seconds
        self.wall_seconds += other.wall_seconds
        for k, v in other.outcomes.items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v
        for k, v in other.fired.items():
            self.fired[k] = self.fired.get(k, 0) + v
        for f in other.findings:
            self.find(f)

    def to_json(self) -> dict:
        d = _json(self, frozenset())
        d["findings"] = [f.to_json() for f in self.findings]
        d["draws_per_s"] = self.draws_per_s
        d["draws_per_wall_s"] = self.draws_per_wall_s
        return d

    @classmethod
    def from_json(cls, d: dict) -> FuzzRecord:
        kw = _kwargs(cls, d)
        kw["findings"] = [FuzzFinding.from_json(f) for f in d.get("findings", [])]
        kw["outcomes"], kw["fired"] = dict(kw.get("outcomes", {})), dict(kw.get("fired", {}))
        return cls(**kw)


@dataclass
class FuzzSection:
    """The fuzzer's part of a results document: one record per binding (merged over every process and
    machine that fuzzed it), the processes it came from (machine, pid, first and last write, as Unix
    times) and the package versions they ran."""

    records: list[FuzzRecord] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    versions: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "records": [r.to_json() for r in self.records],
            "sources": self.sources,
            "versions": self.versions,
        }

    @classmethod
    def from_json(cls, d: dict) -> FuzzSection:
        return cls([FuzzRecord.from_json(r) for r in d["records"]], list(d["sources"]), dict(d["versions"]))

    @classmethod
    def merged(cls, sections: list[FuzzSection]) -> FuzzSection:
        """Several sections as one: a binding's records add up (draws, seconds, outcomes, fired entries;
        findings with the same key add their counts and keep the smallest draw)."""
        out: dict[tuple[str, str], FuzzRecord] = {}
        sources, versions = [], {}
        for s in sections:
            for src in s.sources:  # one process's items each carry it: one entry per (machine, pid)
                same = next(
                    (x for x in sources if (x.get("machine"), x.get("pid")) == (src.get("machine"), src.get("pid"))),
                    None,
                )
                if same is None:
                    sources.append(dict(src))
                else:
                    same["updated"] = max(same.get("updated") or 0, src.get("updated") or 0)
            for pkg, ver in s.versions.items():
                versions.setdefault(pkg, ver)
            for r in s.records:
                key = (r.framework, r.binding)
                if key not in out:
                    out[key] = FuzzRecord(r.framework, r.binding, r.op)
                out[key].merge(r)
        return cls([out[k] for k in sorted(out)], sources, versions)


@dataclass
class Results:
    """A whole results document, as :func:`xentcheck.results.load` returns it.

    ``complete`` is False for a run that did not finish (``incomplete`` says why, with the records it
    finished and the checks it had collected), None for a file written before the field existed."""

    environment: dict
    summary: dict
    expectations: dict
    records: list[CheckRecord]
    benchmarks: BenchSection | None = None
    stability: list[StabilityRecord] = field(default_factory=list)
    schema_version: int = 1
    tool: str = "xentcheck"
    complete: bool | None = True
    incomplete: dict | None = None
    #: the harness's own speed: time to first check, wall time, peak memory, checks/s per framework
    harness: dict | None = None
    #: what the fuzzer saw per binding (suites/test_fuzz.py; merged from campaign files by reports build)
    fuzz: FuzzSection | None = None

    def to_json(self) -> dict:
        d: dict = {"schema_version": self.schema_version, "tool": self.tool}
        if self.complete is not None:
            d["complete"] = self.complete
        if self.incomplete is not None:
            d["incomplete"] = self.incomplete
        d.update(
            {
                "environment": self.environment,
                "summary": self.summary,
                "expectations": self.expectations,
                "records": [r.to_json() for r in self.records],
            }
        )
        if self.benchmarks is not None:
            d["benchmarks"] = self.benchmarks.to_json()
        if self.stability:
            d["stability"] = [s.to_json() for s in self.stability]
        if self.harness is not None:
            d["harness"] = self.harness
        if self.fuzz is not None:
            d["fuzz"] = self.fuzz.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> Results:
        return cls(
            environment=d["environment"],
            summary=d["summary"],
            expectations=d["expectations"],
            records=[CheckRecord.from_json(r) for r in d["records"]],
            benchmarks=BenchSection.from_json(d["benchmarks"]) if d.get("benchmarks") else None,
            stability=[StabilityRecord.from_json(s) for s in d.get("stability", [])],
            schema_version=d["schema_version"],
            tool=d["tool"],
            complete=d.get("complete"),
            incomplete=d.get("incomplete"),
            harness=d.get("harness"),
            fuzz=FuzzSection.from_json(d["fuzz"]) if d.get("fuzz") else None,
        )


def summarize(records: list[CheckRecord]) -> dict[str, int]:
    """Counts of outcomes over all records."""
    out: dict[str, int] = {}
    for r in records:
        out[r.outcome] = out.get(r.outcome, 0) + 1
    return out
