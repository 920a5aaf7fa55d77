"""What JSON can hold: a results file is strict JSON, so a value it cannot hold (NaN, inf, a set, an
object) must be refused where it enters (a declaration file) or made plain where an adapter reports it
(its environment), never discovered when the results are written at the end of a run."""

from __future__ import annotations

import math
from typing import Any


def non_finite(value: Any, path: str = "") -> str | None:
    """The key path (``a.b[2]``) of the first NaN or infinity in nested dicts and lists, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "the value"
    if isinstance(value, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for p, v in items:
        found = non_finite(v, p)
        if found:
            return found
    return None


def plain(value: Any) -> Any:
    """``value`` as plain JSON: sets become sorted lists, tuples lists, non-finite floats the strings
    ``"nan"``/``"inf"``/``"-inf"`` (as the results file writes them), keys strings, anything else its
    ``str``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((plain(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    try:  # NumPy scalars and the like
        return plain(value.item())
    except (AttributeError, TypeError, ValueError):
        return str(value)
