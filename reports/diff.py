"""What changed between two results files: check outcomes, numbers beyond tolerance, timings.

Regressions (the exit status of ``python -m reports diff`` is 1 when there is one): a check that
newly fails or errors, a documented deviation that changed (a different expectation fired, or it
stopped happening: the registry needs updating), a statistically significant slowdown, and, unless
the user accepts them explicitly (``accept``): checks, bindings or frameworks that vanished, and an
incomplete run on either side. The gate never passes because something stopped being checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from xentcheck.bench import stats
from xentcheck.messages import no_longer_happens
from xentcheck.records import CheckRecord, Results, StabilityRecord

BAD = ("fail", "error")


@dataclass
class Diff:
    """The changes between an old and a new results document."""

    outcomes: list[dict] = field(default_factory=list)  # outcome or expectation changed
    numbers: list[dict] = field(default_factory=list)  # same outcome, error moved by > 1 tolerance unit
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    speed: list[stats.Change] = field(default_factory=list)
    stability: list[dict] = field(default_factory=list)  # sweep points whose status changed (informational)
    vanished: list[str] = field(default_factory=list)  # frameworks, bindings, groups of checks gone
    incomplete: list[str] = field(default_factory=list)  # a side that did not finish
    unmarked: list[str] = field(default_factory=list)  # a side written before completeness was recorded
    accept: frozenset[str] = frozenset()  # "removed", "incomplete": accepted by the user
    harness: list[str] = field(default_factory=list)  # the harness's own speed moved (informational)
    raised: list[dict] = field(default_factory=list)  # same outcome, another exception type (informational)

    @property
    def regressions(self) -> list[str]:
        out = [f"{c['id']}: {c['old']} -> {c['new']} ({c['regression']})" for c in self.outcomes if c["regression"]]
        out += [f"{c.name}: {c.ratio:.2f}x slower (p={c.p_adjusted:.2g})" for c in self.speed if c.verdict == "slower"]
        if "removed" not in self.accept:
            out += [f"{v} (--accept-removed accepts it)" for v in self.vanished]
        if "incomplete" not in self.accept:
            out += [f"{i} (--accept-incomplete accepts it)" for i in self.incomplete]
        return out

    @property
    def accepted(self) -> list[str]:
        """What would gate but the user accepted."""
        return (self.vanished if "removed" in self.accept else []) + (
            self.incomplete if "incomplete" in self.accept else []
        )


def _is_regression(old: CheckRecord, new: CheckRecord) -> str:
    """Why the change gates an upgrade ("" when it does not)."""
    if new.outcome == "unsupported" and old.outcome != "unsupported":
        # checking stopped (e.g. a kernel update that declares fewer dtypes): the gate never passes on less
        return f"no longer checked: {new.reason or 'unsupported'}"[:300]
    if new.outcome in BAD and old.outcome not in BAD:
        return f"newly {new.outcome}s" if new.outcome == "error" else "newly fails"
    if old.outcome == "deviation" and (new.outcome, new.expectation) != ("deviation", old.expectation):
        if new.outcome != "pass":
            return "documented deviation changed"
        # gone: behaviour changed under the users' feet, even when it is a fix
        if new.expectation == old.expectation:
            return no_longer_happens("documented deviation")
        return "documented deviation gone in this version, as the registry's version ranges say"
    return ""


def _label(r: CheckRecord) -> str:
    return r.outcome + (f" [{r.expectation}]" if r.expectation else "")


def vanished(old: Results, new: Results, removed: list[str]) -> list[str]:
    """One line per framework, binding or group of checks of ``old`` that ``new`` no longer has."""
    by_id = {r.id: r for r in old.records}
    gone: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rid in removed:
        gone[(by_id[rid].framework, by_id[rid].binding)].append(rid)
    new_frameworks = {r.framework for r in new.records}
    new_bindings = {(r.framework, r.binding) for r in new.records}
    out, told = [], set()
    for (fw, binding), ids in sorted(gone.items()):
        if fw not in new_frameworks:
            if fw not in told:
                n = sum(len(v) for (f, _), v in gone.items() if f == fw)
                why = (new.environment.get("broken", {}) | new.environment.get("skipped", {})).get(fw)
                out.append(f"framework {fw} vanished ({n} checks){': ' + why if why else ''}")
                told.add(fw)
        elif (fw, binding) not in new_bindings:
            out.append(f"binding {fw}::{binding} vanished ({len(ids)} checks)")
        else:
            out.append(f"{len(ids)} checks of {fw}::{binding} vanished (e.g. {ids[0]})")
    return out


def harness_changes(old: Results, new: Results, min_effect: float = stats.MIN_EFFECT) -> list[str]:
    """The harness's own speed, where it moved by more than ``min_effect``: time to first check, wall
    time, peak memory, checks per second per framework. One sample a run, so shown, never gating."""
    a, b = old.harness or {}, new.harness or {}
    pairs = [
        (k, a.get(k), b.get(k), unit)
        for k, unit in (("time_to_first_check_s", "s"), ("wall_s", "s"), ("peak_rss_bytes", "bytes"))
    ]
    for fw in sorted(set(a.get("frameworks", {})) & set(b.get("frameworks", {}))):
        pairs.append((f"{fw} checks/s", a["frameworks"][fw]["checks_per_s"], b["frameworks"][fw]["checks_per_s"], ""))
    out = []
    for name, x, y, unit in pairs:
        if x and y and abs(y / x - 1) > min_effect:
            out.append(f"{name}: {x:.4g} -> {y:.4g}{' ' + unit if unit else ''} ({y / x:.2f}x)")
    return out


def _completeness(name: str, doc: Results) -> tuple[list[str], list[str]]:
    if doc.complete is False:
        why = (doc.incomplete or {}).get("reason", "reason unknown")
        return [f"the {name} run is incomplete ({why})"], []
    if doc.complete is None:
        return [], [f"the {name} run does not say whether it is complete (written by an older xentcheck)"]
    return [], []


@dataclass(frozen=True)
class Thresholds:
    """When a speed change counts: a benchmark's at significance level ``alpha`` and, as the harness's
    own speed's, when it moved by more than ``min_effect`` (a relative change)."""

    alpha: float = stats.ALPHA
    min_effect: float = stats.MIN_EFFECT


def diff(
    old: Results,
    new: Results,
    *,
    speed: Thresholds | None = None,
    accept: frozenset[str] = frozenset(),
    left_out: Callable[[str], bool] | None = None,
) -> Diff:
    """Compare two results documents (old first); ``speed``: when a speed change counts (default
    :class:`Thresholds`(): stats.ALPHA and stats.MIN_EFFECT); ``accept`` names the gated kinds of change
    the user accepts ("removed", "incomplete"). ``left_out``: for a slice of a run, whether its
    selection left a check out (by id); the baseline's checks it left out are not compared, every other
    missing check vanished."""
    speed = speed if speed is not None else Thresholds()
    alpha, min_effect = speed.alpha, speed.min_effect
    a = {r.id: r for r in old.records}
    b = {r.id: r for r in new.records}
    if left_out is not None:
        a = {rid: r for rid, r in a.items() if rid in b or not left_out(rid)}
    d = Diff(added=sorted(b.keys() - a.keys()), removed=sorted(a.keys() - b.keys()), accept=accept)
    d.vanished = vanished(old, new, d.removed)
    for name, doc in (("baseline", old), ("new", new)):
        bad, unmarked = _completeness(name, doc)
        d.incomplete += bad
        d.unmarked += unmarked
    for rid in sorted(a.keys() & b.keys()):
        ro, rn = a[rid], b[rid]
        if (ro.outcome, ro.expectation) != (rn.outcome, rn.expectation):
            d.outcomes.append(
                {
                    "id": rid,
                    "old": _label(ro),
                    "new": _label(rn),
                    "regression": _is_regression(ro, rn),
                    "reason": rn.reason,
                }
            )
        elif ro.errors and rn.errors and abs(rn.errors.tol_units - ro.errors.tol_units) > 1:
            d.numbers.append({"id": rid, "old_tol_units": ro.errors.tol_units, "new_tol_units": rn.errors.tol_units})
        elif ro.raised and rn.raised and ro.raised["type"] != rn.raised["type"]:
            d.raised.append({"id": rid, "old": ro.raised["type"], "new": rn.raised["type"], "at": rn.raised["at"]})
    d.stability = stability_changes(old.stability, new.stability)
    d.harness = harness_changes(old, new, min_effect)
    d.speed = stats.compare(
        old.benchmarks.records if old.benchmarks else [],
        new.benchmarks.records if new.benchmarks else [],
        alpha=alpha,
        min_effect=min_effect,
    )
    return d


def stability_changes(old: list[StabilityRecord], new: list[StabilityRecord]) -> list[dict]:
    """Points of the stability sweep (same binding, axis, dtype and x) whose loss or gradient status
    changed, e.g. a loss that became NaN at large logits. The checks give the verdicts; this says where."""
    before = {(r.id, p.x): p for r in old for p in r.points}
    out = []
    for r in new:
        for p in r.points:
            q = before.get((r.id, p.x))
            for check in ("value", "grad"):
                key = f"{check}_status"
                now, then = getattr(p, key), getattr(q, key, None)
                if now is not None and then is not None and now != then:
                    out.append({"id": r.id, "x": p.x, "check": check, "old": then, "new": now})
    return out


def keyword_left_out(expression: str, module: str = "suites/test_conformance.py") -> Callable[[str], bool]:
    """Whether ``-k EXPRESSION`` leaves a conformance check out, judged from its id as pytest would judge
    its test (names matched as substrings, case-insensitively): a check of a binding that vanished is
    judged as if it were still collected."""
    from _pytest.mark.expression import Expression

    compiled = Expression.compile(expression)
    parts = module.split("/")

    def left_out(check_id: str) -> bool:
        names = [*parts, "test_conformance", f"test_conformance[{check_id}]"]

        def matches(sub: str, **kwargs) -> bool:
            return any(sub.lower() in n.lower() for n in names)

        return not compiled.evaluate(matches)

    return left_out


def lines(d: Diff) -> list[str]:
    """The terminal summary, regressions first."""
    out = [f"REGRESSION {r}" for r in d.regressions]
    out += [f"accepted   {a}" for a in d.accepted]
    out += [f"note       {u}" for u in d.unmarked]
    out += [f"changed    {c['id']}: {c['old']} -> {c['new']}" for c in d.outcomes if not c["regression"]]
    out += [
        f"numbers    {c['id']}: error {c['old_tol_units']:.6g} -> {c['new_tol_units']:.6g} tolerance units"
        for c in d.numbers
    ]
    out += [f"stability  {c['id']} at x={c['x']:.3g} ({c['check']}): {c['old']} -> {c['new']}" for c in d.stability]
    out += [
        f"faster     {c.name}: {1 / c.ratio:.2f}x faster (p={c.p_adjusted:.2g})"
        for c in d.speed
        if c.verdict == "faster"
    ]
    out += [f"harness    {h}" for h in d.harness]
    out += [f"exception  {c['id']}: raises {c['old']} -> {c['new']} (at {c['at']})" for c in d.raised]
    uncompared = sum(c.verdict == "not compared" for c in d.speed)
    timed = len(d.speed) - uncompared
    out.append(
        f"{len(d.outcomes)} outcome changes ({sum(bool(c['regression']) for c in d.outcomes)} regressions), "
        f"{len(d.numbers)} numeric changes beyond one tolerance unit, {len(d.added)} checks added, "
        f"{len(d.removed)} removed, {len(d.stability)} stability points changed; {timed} benchmarks compared: "
        f"{sum(c.verdict == 'slower' for c in d.speed)} slower, "
        f"{sum(c.verdict == 'faster' for c in d.speed)} faster"
        + (f" ({uncompared} not compared: timed in fewer than 6 rounds)" if uncompared else "")
    )
    return out
