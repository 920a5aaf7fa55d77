"""The expectations registry: documented deviations from the mathematics, checked strictly.

Each entry names a framework, the bindings it covers, where its behaviour occurs as a condition on the
input (``when``: properties of the problem, xentcheck.conditions; never our own case names), a version
range, and the behaviour
expected instead, written as a policy of the oracle (e.g. ``prob_clip = 1e-7``), so the expected
numbers still come from the oracle, never from the framework. A check an entry covers is a
``deviation`` when the binding differs from the mathematics and matches the policy; when the binding
matches the mathematics where the policy would differ, the entry no longer happens and the check
fails (a fix or a behaviour change on upgrade is never silent).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from . import conditions, policies
from .declarations import TableKind, check, tables
from .messages import expectation, no_longer_happens
from .problem import DTYPES, OPTIONS, Problem
from .protocol import variant_of
from .records import CheckRecord
from .reference import POLICIES, Convention

if TYPE_CHECKING:
    from .check import Check

# Oracle policies an entry may expect (xentcheck/policies, one module each, make their part of the
# schema), plus compute_dtype: "the result has the precision of this dtype" (judged with that dtype's
# bound against the same oracle values), and result_dtype: "the result is
# returned in this dtype" (a documented promotion or downcast; otherwise the result contract wants the
# input's dtype), and raises (with an optional message regex): "the binding raises this exception (its
# class name) on input where the mathematics has an answer".
# invalid_targets: what a binding documents for invalid input instead of raising ("nan": an out-of-range
# label's row is NaN; "wrap": a negative label counts from the end, as NumPy indexing does;
# "broadcast": a dense target of another shape is broadcast against the input, elementwise;
# "int_truncated": with integer inputs, the loss is returned cast to integers, truncated toward 0 (a loss
# averaged over its labels: each label's term truncated, then averaged);
# "zero": an out-of-range label one-hot encodes to a row of zeros, so its loss is 0;
# "first_entries": an array longer than its axis (class weights of another length than the classes) is
# used up to the axis's length, the rest ignored: the well-formed problem's loss;
# "out_of_bounds_read": an array shorter than its axis (targets for fewer rows than the input) is read
# past its end, unchecked: a loss of undefined value, only its returning without raising is checked).
_CONVENTION_KEYS = set(POLICIES)
INVALID_TARGETS = ("nan", "wrap", "broadcast", "int_truncated", "zero", "first_entries", "out_of_bounds_read")
_REQUIRED = ("id", "framework", "bindings", "expect", "reason", "source")


def _names(title: str, values: tuple[str, ...] | None = None) -> dict:
    item = {"title": f"{title} entry", "type": "string"}
    if values:
        item = {"title": f"{title} entry", "enum": list(values)}
    return {"title": title, "type": "array", "items": item, "x-expects": "a list of names"}


#: the schema of one ``[[expectation]]`` table
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": list(_REQUIRED),
    "additionalProperties": False,
    "properties": {
        "id": {
            "title": "id",
            "type": "string",
            "pattern": "^[a-z0-9][a-z0-9-]*$",
            "x-message": "id must be lower-case letters, digits and '-'",
        },
        "framework": {
            "title": "framework",
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ],
            "x-expects": "a framework name or a list of them (Keras on several backends)",
        },
        "package": {"title": "package", "type": "string"},
        "bindings": {**_names("bindings"), "minItems": 1},
        "checks": _names("checks", ("value", "grad")),
        "when": conditions.SCHEMA,
        "examples": _names("examples"),
        "tracker": {
            "title": "tracker",
            "type": "string",
            "minLength": 1,
            "x-expects": "the upstream issue and its state, or what was searched and that none was found",
        },
        "dtypes": _names("dtypes", DTYPES),
        "options": _names("options", OPTIONS),
        "modes": _names("modes", ("eager", "compiled")),
        "reductions": _names("reductions", ("none", "sum", "mean")),
        "versions": {"title": "versions", "type": "string", "x-expects": "a version specifier like '>=2.0,<3'"},
        "expect": {
            "title": "expect",
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "x-unknown": "is not an oracle policy",
            "properties": {
                **policies.expect_schema(),
                "compute_dtype": {"title": "expect.compute_dtype", "enum": list(DTYPES)},
                "result_dtype": {"title": "expect.result_dtype", "enum": list(DTYPES)},
                "raises": {"title": "expect.raises", "type": "string", "minLength": 1},
                "message": {"title": "expect.message", "type": "string", "minLength": 1},
                "invalid_targets": {"title": "expect.invalid_targets", "enum": list(INVALID_TARGETS)},
            },
        },
        "reason": {"title": "reason", "type": "string", "minLength": 1},
        "source": {
            "title": "source",
            "type": "string",
            "pattern": "^https?://",
            "x-message": "source must be a link to the documentation or issue",
        },
    },
}


class ExpectationError(ValueError):
    """A malformed registry file; the message is one line naming the file, entry and key."""


@dataclass(frozen=True)
class Expectation:
    """One documented deviation."""

    id: str
    framework: str | tuple[str, ...]
    bindings: tuple[str, ...]
    expect: dict
    reason: str
    source: str
    package: str = ""
    checks: tuple[str, ...] = ("value", "grad")
    #: where the behaviour occurs: ``property = value`` pairs over the problem (xentcheck.conditions)
    when: dict | None = None
    #: catalog cases where it shows (documentation only: ``when`` selects)
    examples: tuple[str, ...] = ()
    #: the upstream issue and its state, or what was searched and that none was found
    tracker: str = ""
    dtypes: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    #: the problem's reduction (``none``, ``sum``, ``mean``): a behaviour of one reduction's code path
    reductions: tuple[str, ...] = ()
    versions: str = ""
    #: the entry covers only problems that use all these options together (an interaction)
    options: tuple[str, ...] = ()

    def covers(self, binding: str) -> bool:
        """Whether the entry names ``binding``, or the binding it is a calling variant of (``NAME[how]``:
        the same API called another way, e.g. with a second backward, has the API's documented behaviours;
        an entry about the variant alone names it in full)."""
        return binding in self.bindings or variant_of(binding) in self.bindings

    def applies(self, key: Check, versions: dict, problem: Problem | None = None) -> bool:
        """Whether this entry covers the check ``key`` (its framework, binding, dtype, kind, mode,
        reduction and the options its problem uses; version taken from ``versions[package or
        framework]``) on the input ``problem``, which an entry with a ``when`` condition needs (without it
        such an entry does not apply). Case names and categories never select: behaviours are described
        by the input."""
        if key.framework not in self.frameworks or not self.covers(key.binding) or key.kind not in self.checks:
            return False
        if not set(self.options) <= key.options:
            return False
        if self.dtypes and key.dtype not in self.dtypes:
            return False
        if self.modes and key.mode not in self.modes:
            return False
        if self.reductions and key.reduction not in self.reductions:
            return False
        if not self.in_versions(versions):
            return False
        # last: the only test that computes properties of the input
        return not self.when or (problem is not None and conditions.holds(self.when, problem))

    @property
    def frameworks(self) -> tuple[str, ...]:
        """The frameworks it covers (one name, or a list: the same Keras code on several backends)."""
        return (self.framework,) if isinstance(self.framework, str) else tuple(self.framework)

    def in_versions(self, versions: dict) -> bool:
        """Whether the installed version (``versions[package or framework]``) is inside the entry's range."""
        if not self.versions:
            return True
        v = versions.get(self.package or self.frameworks[0])
        return v is not None and _in_range(str(v), self.versions)

    def convention(self, base: Convention) -> Convention:
        """The binding's convention with this entry's policies applied."""
        return replace(base, **{k: v for k, v in self.expect.items() if k in _CONVENTION_KEYS})

    @property
    def compute_dtype(self) -> str | None:
        return self.expect.get("compute_dtype")

    @property
    def result_dtype(self) -> str | None:
        return self.expect.get("result_dtype")

    @property
    def raises(self) -> str | None:
        return self.expect.get("raises")

    def raised_as_documented(self, e: BaseException) -> bool:
        """Whether ``e`` is the exception this entry documents: its class (or a base class) is named
        ``raises`` and its message matches the ``message`` pattern, if one is given."""
        names = {c.__name__ for c in type(e).__mro__} | set(getattr(e, "remote_types", ()))
        pattern = self.expect.get("message")
        return self.raises in names and (pattern is None or re.search(pattern, str(e)) is not None)

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v, tuple) else v) for f in fields(self) for v in [getattr(self, f.name)]}


@lru_cache(maxsize=4096)
def _in_range(version: str, specifiers: str) -> bool:
    # parsed once per (version, range): a run asks the same few pairs for every check it judges
    try:
        return Version(version) in SpecifierSet(specifiers)
    except InvalidVersion:
        return False


def _entry(raw: dict, where: str) -> Expectation:
    for old in ("cases", "categories"):
        if old in raw:
            raise ExpectationError(
                f"{where}: selects by {old} (our own names); describe the input instead with "
                f"when = {{ property = value }} (xentcheck/conditions.py) and list the cases "
                f"under examples"
            )
    check(raw, SCHEMA, where, ExpectationError)
    if raw.get("versions"):
        try:
            SpecifierSet(raw["versions"])
        except InvalidSpecifier:
            raise ExpectationError(
                f"{where}: versions {raw['versions']!r} is not a version specifier like '>=2.0,<3'"
            ) from None
    pattern = raw.get("expect", {}).get("message") if isinstance(raw.get("expect"), dict) else None
    if pattern is not None:
        try:  # at load: a bad pattern is the registry's mistake, never a binding's error mid-run
            re.compile(pattern)
        except re.error as e:
            raise ExpectationError(
                f"{where}: expect.message {pattern!r} is not a regular expression ({e}); "
                f"escape its special characters (e.g. \\( for a parenthesis)"
            ) from None
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}
    return Expectation(**kw)


@dataclass(frozen=True)
class Registry:
    """All expectation entries, loaded from one or more TOML files."""

    entries: tuple[Expectation, ...] = ()

    def find(self, key: Check, versions: dict, problem: Problem | None = None) -> Expectation | None:
        """The entry covering the check ``key`` on the input ``problem`` (see :meth:`Expectation.applies`),
        if any. Several entries that apply together (e.g. a policy and a compute_dtype) combine into one
        whose id joins theirs with '+'."""
        candidates = self._by_target.get((key.framework, key.binding, key.kind), ())
        base = variant_of(key.binding)
        if base != key.binding:  # a calling variant: its own entries, then its binding's
            candidates += self._by_target.get((key.framework, base, key.kind), ())
        hits = [e for e in candidates if e.applies(key, versions, problem)]
        if len(hits) <= 1:
            return hits[0] if hits else None
        expect: dict = {}
        for e in hits:
            expect.update(e.expect)
        return replace(
            hits[0], id="+".join(e.id for e in hits), expect=expect, reason="; ".join(e.reason for e in hits)
        )

    def get(self, entry_id: str) -> Expectation:
        return next(e for e in self.entries if e.id == entry_id)

    @cached_property
    def _by_target(self) -> dict[tuple[str, str, str], tuple[Expectation, ...]]:
        """(framework, binding, check kind) -> the entries naming all three, in registry order: a run
        asks :meth:`find` for every check it judges, and scanning every entry each time was a quarter of
        the relations' time."""
        index: dict[tuple[str, str, str], list[Expectation]] = defaultdict(list)
        for e in self.entries:
            for fw in e.frameworks:
                for b in e.bindings:
                    for kind in e.checks:
                        index[(fw, b, kind)].append(e)
        return {k: tuple(v) for k, v in index.items()}

    def undeclared(
        self, known: set[str] | frozenset[str], declared: dict[str, set[str]], versions: dict | None = None
    ) -> str | None:
        """One line naming the first entry that names a framework not in ``known`` (every framework the
        run could check, installed or not), or a binding that none of its frameworks declares among
        ``declared`` (framework -> binding names, for the adapters loaded); None when all are declared.
        An entry is judged on its bindings only where all its frameworks are loaded (one not installed
        may declare them) and its ``package`` is installed (in ``versions``: an optional library, such
        as Liger-Kernel for the torch adapter, contributes its bindings only when it is there)."""
        for e in self.entries:
            unknown = [f for f in e.frameworks if f not in known]
            if unknown:
                return (
                    f"expectation {e.id!r} names framework {unknown[0]!r}, which no adapter declares "
                    f"(known: {', '.join(sorted(known))}); fix the name in the registry"
                )
            loaded = [f for f in e.frameworks if f in declared]
            if len(loaded) < len(e.frameworks):  # a binding may be one of a framework not loaded here
                continue
            if e.package and versions is not None and e.package not in versions:
                continue
            names = set().union(*(declared[f] for f in loaded))
            missing = [b for b in e.bindings if b not in names]
            if missing:
                return (
                    f"expectation {e.id!r} names binding {missing[0]!r}, which {' / '.join(loaded)} does not "
                    f"declare; fix the name in the registry (see the adapter's bindings)"
                )
        return None


def _in_scope(e: Expectation, r: CheckRecord) -> bool:
    """Whether ``r`` lies on the entry's bindings, checks, dtypes, modes and reductions, whatever its case:
    the checks the run selected where the entry could have applied."""
    return (
        r.framework in e.frameworks
        and e.covers(r.binding)
        and r.check in e.checks
        and (not e.dtypes or r.dtype in e.dtypes)
        and (not e.modes or r.mode in e.modes)
        and (not e.reductions or r.reduction in e.reductions)
    )


@dataclass(frozen=True)
class RunScope:
    """What :func:`audit` needs to know of the run besides its records: the ``frameworks`` that ran, the
    installed ``versions`` (package -> version; None: unknown), the ``declared`` bindings
    (``framework::binding`` names the adapters declare; None: unknown) and the entries
    ``fired_elsewhere`` (shown by a layer that writes no record)."""

    frameworks: frozenset[str]
    versions: dict | None = None
    declared: frozenset[str] | None = None
    fired_elsewhere: frozenset[str] = frozenset()

    def __post_init__(self) -> None:  # any set given: held frozen
        object.__setattr__(self, "frameworks", frozenset(self.frameworks))
        if self.declared is not None:
            object.__setattr__(self, "declared", frozenset(self.declared))
        object.__setattr__(self, "fired_elsewhere", frozenset(self.fired_elsewhere))


def audit(registry: Registry, records: list[CheckRecord], scope: RunScope) -> tuple[list[str], list[str]]:
    """Run-level strictness: (stale, unused) entry messages for the frameworks that ran (``scope``) (and,
    given ``scope.versions``, only for entries whose version range holds: another release line's entry
    is silent).

    stale: the entry covered checks where its documented behaviour differs from the mathematics, and
        none of them deviated (the behaviour stopped).
    unused: the run selected checks on the entry's bindings, dtypes, modes and reductions and the entry
        covered none of them (a typo in a case or category name, or a removed case; an entry that needs
        options together is not judged here: whether the run selected a problem combining them is not in
        the records); or, given
        ``scope.declared`` (the ``framework::binding`` names the adapters declare), the entry names a binding
        no framework of its own has. An entry whose checks the run did not select (a dtype a slice leaves
        out by design, a binding -k or --binding left out) is not unused: nothing is said about it.
    ``scope.fired_elsewhere``: entries whose behaviour a layer that writes no record showed (the fuzz
    slice's draws): they are neither unused nor stale.
    """
    frameworks, versions, declared = scope.frameworks, scope.versions, scope.declared
    fired_elsewhere = scope.fired_elsewhere
    applied: dict[str, int] = {}
    fired: dict[str, int] = {}
    covered: set[str] = set()
    refusals = {e.id for e in registry.entries if e.raises}  # a documented refusal of invalid input passes
    for r in records:
        ids = r.expectation.split("+") if r.expectation else []
        covered.update(ids)
        for e in ids if r.expectation_differs else []:
            applied[e] = applied.get(e, 0) + 1
            if r.outcome == "deviation" or (r.outcome == "pass" and e in refusals):
                fired[e] = fired.get(e, 0) + 1
    covered.update(fired_elsewhere)
    for e in fired_elsewhere:
        applied[e] = applied.get(e, 0) + 1
        fired[e] = fired.get(e, 0) + 1
    stale, unused = [], []
    modes_run = {r.mode for r in records}
    for e in registry.entries:
        if not set(e.frameworks) & frameworks or (e.modes and not set(e.modes) & modes_run):
            continue  # its framework or its mode did not run
        if versions is not None and not e.in_versions(versions):
            continue  # it documents another release
        ran = [f for f in e.frameworks if f in frameworks]
        unknown = [b for b in e.bindings if declared is not None and not any(f"{f}::{b}" in declared for f in ran)]
        if unknown:
            unused.append(
                f"expectation {e.id!r} names bindings {unknown} that {', '.join(ran)} does not have "
                f"(a typo, or a renamed binding)"
            )
        elif e.id not in covered:
            # options are names the schema checks (no typo to catch), and a run that leaves the interaction
            # cases out (a slice) selects no problem combining them: such an entry is judged by the full run
            selected = 0 if e.options else sum(_in_scope(e, r) for r in records)
            if selected:
                unused.append(
                    f"expectation {e.id!r} covered none of the {selected} checks this run selected on its "
                    f"bindings (its conditions or options match none of their inputs)"
                )
        elif e.id not in applied:
            unused.append(
                f"expectation {e.id!r} covered checks, but none whose input shows the documented "
                f"behaviour; add a case that does"
            )
        elif e.id not in fired:
            stale.append(
                no_longer_happens(
                    expectation(e.id),
                    f"it covered {applied[e.id]} checks and none deviated",
                    "the behaviour changed, update or remove the entry",
                )
            )
    return stale, unused


def load_registry(paths: list[Path]) -> Registry:
    """Load and validate registry files; raises ExpectationError with one line on bad input."""
    entries: dict[str, Expectation] = {}
    for where, raw in tables(paths, TableKind("expectation", "id", ExpectationError, "expectations")):
        e = _entry(raw, where)
        if e.id in entries:
            raise ExpectationError(f"{where}: duplicate id")
        entries[e.id] = e
    return Registry(tuple(entries.values()))
