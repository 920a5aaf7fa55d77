"""``-k`` selects checks, not tests: a conformance test runs a bundle of checks (one binding on one case
in one dtype and mode, every reduction and kind; :class:`xentcheck.check.Bundle`), and ``-k`` judges
each check by its own id, ``framework-binding-case-dtype-mode-reduction-check``, as pytest would judge a
test of that name. A bundle keeps the checks the expression selects and is deselected when none is, so
``-k "grad and float64"`` runs gradient checks only, as when each check was a test of its own. pytest
judges every other test as always.
"""

from __future__ import annotations

import pytest
from _pytest.mark import KeywordMatcher
from _pytest.mark.expression import Expression

from .scheduling import bundle_of, narrow


class CheckKeywords:
    """Registered for the run: applies ``-k`` check by check to the conformance suite's bundles, and to
    the other tests as pytest does, before pytest's own selection (which it then leaves nothing to do)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config, items: list):
        keyword = config.option.keyword.lstrip()
        bundles = [bundle_of(i) for i in items]
        if not keyword or not any(bundles):
            return (yield)
        try:
            expr = Expression.compile(keyword)
        except SyntaxError:  # pytest reports it, in its own words
            return (yield)
        keep, dropped = [], []
        for item, bundle in zip(items, bundles, strict=True):
            matcher = KeywordMatcher.from_item(item)
            if bundle is None:
                (keep if expr.evaluate(matcher) else dropped).append(item)
                continue
            others = {n for n in matcher._names if n != item.name}
            base = item.name.partition("[")[0]
            chosen = tuple(c for c in bundle.checks if expr.evaluate(KeywordMatcher({*others, f"{base}[{c.test_id}]"})))
            if not chosen:
                dropped.append(item)
                continue
            if len(chosen) < len(bundle.checks):
                narrow(item, chosen)
            keep.append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = keep
        config.option.keyword = ""  # selected: pytest's -k has nothing left to do (and would judge bundles)
        try:
            return (yield)
        finally:
            config.option.keyword = keyword
