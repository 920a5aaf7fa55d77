"""One check as one value, what a judge decides about it, and the one function making a record of both.

A :class:`Check` names one thing a run checks: a binding of a framework on a case (or a relation, a
stability axis, a probed capability, a reproduction snippet) in a dtype, mode and reduction. It is the
suite's parameter, the registry's lookup key (:meth:`xentcheck.expectations.Registry.find`), the test id
(:attr:`Check.test_id`, built here and never parsed back), the record's identity (:func:`record`) and
the worker group it runs in (:attr:`Check.group`, from what its adapter declares). A judge returns a
frozen :class:`Verdict`; :func:`record` alone turns (check, verdict) into the results record, which is
not changed after that.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from .records import CheckRecord, Errors, RelationRecord, StabilityPoint, StabilityRecord

__all__ = ["CONFORMANCE", "KINDS", "Bundle", "Check", "Verdict", "record"]

#: the kinds of check: a value or gradient against the oracle (conformance), a relation inside one
#: framework, a stability sweep along one axis, a probed capability, a reproduction snippet
KINDS = ("value", "grad", "relation", "stability", "probe", "snippet")
CONFORMANCE = ("value", "grad")


@dataclass(frozen=True)
class Check:
    """One check. ``case`` is the case's name for a conformance check or a snippet, the relation's for
    a relation, the axis's for a stability sweep and the facet's for a probe (``value``: the probed
    value). ``api``, ``op``, ``category``, ``target`` and ``device`` describe it in its record;
    ``options`` (those the problem uses) narrow the registry lookup; ``group`` is the worker group
    (see :attr:`group`). Only the identity takes part in equality."""

    framework: str
    binding: str
    case: str
    dtype: str = ""
    mode: str = "eager"
    reduction: str = ""
    kind: str = "value"
    value: str = ""
    api: str = field(default="", compare=False)
    op: str | None = field(default=None, compare=False)
    category: str = field(default="", compare=False)
    target: str | None = field(default=None, compare=False)
    device: str = field(default="cpu", compare=False)
    options: frozenset[str] = field(default=frozenset(), compare=False)
    #: the statement of a relation (its record states it)
    statement: str = field(default="", compare=False)
    #: the worker group its adapter declares for it (empty: one group per framework)
    group: str = field(default="", compare=False)

    @property
    def test_id(self) -> str:
        """The pytest id (``-k`` selects any slice of it): ``framework-binding-case-dtype-mode-reduction-
        check`` for a conformance check, ``framework-binding-relation-dtype``, ``framework-binding-axis-
        dtype``, ``framework-binding-facet-value`` and ``framework-binding-case`` for the others."""
        parts = {
            "value": (self.dtype, self.mode, self.reduction, self.kind),
            "grad": (self.dtype, self.mode, self.reduction, self.kind),
            "relation": (self.dtype,),
            "stability": (self.dtype,),
            "probe": (self.value,),
            "snippet": (),
        }[self.kind]
        return "-".join((self.framework, self.binding, self.case, *parts))

    @property
    def id(self) -> str:
        """The record's id: the test id, but a relation's names its mode, reduction and kind too."""
        if self.kind == "relation":
            return "-".join((self.framework, self.binding, self.case, self.dtype, "eager", "all", "relation"))
        return self.test_id

    def to_json(self) -> dict:
        """Plain JSON values (it travels from an xdist worker to the controller)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["options"] = sorted(self.options)
        return d

    @classmethod
    def from_json(cls, d: dict) -> Check:
        return cls(**{**d, "options": frozenset(d.get("options", ()))})

    @property
    def records(self) -> bool:
        """Whether this kind of check writes a results record (probes and snippets report otherwise)."""
        return self.kind in ("value", "grad", "relation", "stability")


@dataclass(frozen=True)
class Bundle:
    """The conformance checks one test runs: one binding on one case in one dtype and mode, every
    reduction and kind (value, grad) of them that the run selected.

    A test per check cost pytest and pytest-xdist about 2.5 ms of CPU each (its phases, reports and
    their transport), as much as a typical check; a test per bundle runs the same checks and writes the
    same records (each check keeps its own id), in a third of the tests. ``-k`` still selects checks by
    their ids (the suite's plugin narrows a bundle to the checks it selects)."""

    checks: tuple[Check, ...]

    def __post_init__(self) -> None:
        if not self.checks:
            raise ValueError("a bundle holds at least one check")

    @property
    def test_id(self) -> str:
        """``framework-binding-case-dtype-mode``: what every check of the bundle shares."""
        c = self.checks[0]
        return "-".join((c.framework, c.binding, c.case, c.dtype, c.mode))

    @property
    def group(self) -> str:
        """The worker group its checks share (:meth:`of` never bundles checks of two groups)."""
        return self.checks[0].group

    @staticmethod
    def of(checks: list[Check]) -> list[Bundle]:
        """``checks`` bundled by binding, case, dtype, mode (and worker group), in the order each bundle
        first occurs."""
        out: dict[tuple, list[Check]] = {}
        for c in checks:
            out.setdefault((c.framework, c.binding, c.case, c.dtype, c.mode, c.group), []).append(c)
        return [Bundle(tuple(cs)) for cs in out.values()]


@dataclass(frozen=True)
class Verdict:
    """What a judge decided about one check: the outcome, its reason, and the evidence the record keeps
    (see docs/results.md). A stability sweep's verdict carries its points and the entries that applied."""

    outcome: str = "unsupported"
    reason: str = ""
    expectation: str | None = None
    expectation_differs: bool | None = None
    errors: Errors | None = None
    errors_vs_expectation: Errors | None = None
    result_dtype: str | None = None
    compute_dtype: str | None = None
    duration_s: float = 0.0
    vs_eager: dict | None = None
    repro: str | None = None
    traceback: str | None = None
    raised: dict | None = None
    points: tuple[StabilityPoint, ...] = ()
    expectations: tuple[str, ...] = ()
    #: fail and deviation: the worst elements against the mathematics ({"at", "expected", "got", "bound"})
    worst: tuple[dict, ...] = ()


def record(check: Check, verdict: Verdict) -> CheckRecord | RelationRecord | StabilityRecord:
    """The results record of ``check`` judged as ``verdict``: the one place a record is made."""
    if check.kind == "stability":
        return StabilityRecord(
            id=check.id,
            framework=check.framework,
            binding=check.binding,
            op=check.op or "",
            axis=check.case,
            label=check.statement,
            dtype=check.dtype,
            device=check.device,
            outcome=verdict.outcome,
            reason=verdict.reason,
            expectations=list(verdict.expectations),
            points=list(verdict.points),
        )
    ident = dict(
        id=check.id,
        framework=check.framework,
        binding=check.binding,
        api=check.api,
        op=check.op,
        case=check.case,
        category=check.category,
        dtype=check.dtype,
        mode=check.mode,
        device=check.device,
        reduction=check.reduction,
        target=check.target,
        check=check.kind,
    )
    judged = dict(
        outcome=verdict.outcome,
        reason=verdict.reason,
        expectation=verdict.expectation,
        errors=verdict.errors,
        result_dtype=verdict.result_dtype,
        compute_dtype=verdict.compute_dtype,
        duration_s=verdict.duration_s,
        expectation_differs=verdict.expectation_differs,
        errors_vs_expectation=verdict.errors_vs_expectation,
        vs_eager=verdict.vs_eager,
        repro=verdict.repro,
        traceback=verdict.traceback,
        raised=verdict.raised,
        worst=[dict(w) for w in verdict.worst] or None,
    )
    if check.kind == "relation":
        return RelationRecord(**ident, **judged, relation=check.statement)
    return CheckRecord(**ident, **judged)
