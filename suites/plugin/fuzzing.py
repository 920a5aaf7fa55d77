"""The fuzz target's bookkeeping in the run (suites/test_fuzz.py): this process's tally
(xentcheck.fuzz_tally), and the item's end, where pytest runs the item (HypoFuzz calls the test itself,
one draw at a time, and runs no pytest hooks): the binding's tally goes to the results (and its fired
registry entries to the audit), and under --fuzz the item fails if its draws found anything new.

A plain hook, not a fixture: HypoFuzz re-enters a target's fixtures at every switch between targets,
and a function-scoped fixture of our own cannot be re-entered there."""

from __future__ import annotations

import json

import pytest

from xentcheck.fuzz_tally import FuzzTally, tally_path

#: the key under which the fuzz target attaches the registry entries its draws showed (it writes no record)
FUZZ_KEY = "xentcheck_fuzz_fired"
#: the key under which each fuzz item attaches its binding's tally document (xentcheck.fuzz_tally)
FUZZ_TALLY_KEY = "xentcheck_fuzz_tally"
#: the fuzz target's parameter: (framework, binding)
PARAM = "fuzz_binding"

_TALLY = pytest.StashKey[FuzzTally]()


def tally_of(config: pytest.Config) -> FuzzTally:
    """This process's tally; under --fuzz it is also a file in the fuzz folder beside the results (a
    campaign is stopped by a signal, so what it saw is rewritten to disk every few seconds)."""
    if _TALLY not in config.stash:
        from . import session_of

        xs = session_of(config)
        folder = xs.options.results.parent / "fuzz" if xs.options.fuzz else None
        config.stash[_TALLY] = FuzzTally(tally_path(folder) if folder else None, versions=xs.versions())
    return config.stash[_TALLY]


class FuzzItems:
    """The end of each fuzz item run by pytest (registered by the plugin)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        spec = getattr(getattr(item, "callspec", None), "params", {}).get(PARAM)
        if spec is None:
            return (yield)
        from . import session_of

        xs = session_of(item.config)
        fw, name = spec
        tally = tally_of(item.config)
        t = tally.binding(fw, name, xs.bindings(fw)[name].caps.op)
        known = len(t.findings)
        try:
            result = yield
        finally:
            tally.flush(force=True)
            item.user_properties.append((FUZZ_KEY, json.dumps(sorted(t.fired))))
            item.user_properties.append((FUZZ_TALLY_KEY, json.dumps(tally.as_dict(only=f"{fw}-{name}"))))
        if xs.options.fuzz and len(t.findings) > known:
            raise AssertionError(
                "\n".join(
                    f"finding {f.key}: {f.outcome} in {f.count} draws: {f.reason} | draw: {f.repro}"
                    for f in t.findings[known:]
                )
            )
        return result
