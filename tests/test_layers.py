"""The layers import one way: the core (``xentcheck/``) imports none of ``adapters``, ``cases``,
``reports`` or ``suites``; ``reports`` reads results files only (no framework, no adapter, no case);
``cases`` and ``adapters`` build on the core alone. Checked on every module's import statements
(parsed, so a lazy import inside a function counts too).

One exception: ``reports/show.py`` (``python -m reports show``) rebuilds a check from its case and
runs its binding, so it imports ``cases`` and ``adapters`` (never a framework by name: the adapter
does). Nothing else in ``reports`` imports it at module level."""

import ast
from pathlib import Path

import pytest

from .runs import ROOT

FRAMEWORKS = {"torch", "tensorflow", "keras", "jax", "jaxlib", "optax", "sklearn"}
#: layer -> the top-level packages it must never import
FORBIDDEN = {
    "xentcheck": {"adapters", "cases", "reports", "suites"} | FRAMEWORKS,
    "reports": {"adapters", "cases", "suites"} | FRAMEWORKS,
    "cases": {"adapters", "reports", "suites"} | FRAMEWORKS,
    "adapters": {"cases", "reports", "suites"},
}

#: module -> the packages it may import beyond its layer's rule (see the module docstring)
EXEMPT = {"reports/show.py": {"adapters", "cases"}}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports (relative imports resolve inside its own package)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_one_way(layer):
    modules = sorted((ROOT / layer).rglob("*.py"))
    assert modules
    bad = {
        str(m.relative_to(ROOT)): sorted(
            imported_packages(m) & (FORBIDDEN[layer] - EXEMPT.get(str(m.relative_to(ROOT)), set()))
        )
        for m in modules
    }
    assert {m: pkgs for m, pkgs in bad.items() if pkgs} == {}


def test_the_checker_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from adapters.framework import X\n    import torch.nn\n")
    assert imported_packages(f) == {"adapters", "torch"}
