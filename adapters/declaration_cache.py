"""The Keras backends' declaration cache as data: JSON, validated on read, never code.

A worker's declaration (its environment and its bindings' capabilities and conventions) is cached so
that a run needs no worker for a backend whose checks are all settled. A pickle would run whatever a
planted file holds (a shared or restored CI cache is enough); this JSON is rebuilt into the declared
dataclasses field by field, and a file that does not rebuild exactly is ignored (a worker is asked)."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

from xentcheck.json_safety import non_finite
from xentcheck.protocol import Capabilities
from xentcheck.reference import Convention

FORMAT = 1


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, raw: Any) -> Any:
    """``cls`` from its plain form: each field converted to its annotated container type."""
    if not isinstance(raw, dict) or set(raw) - {f.name for f in dataclasses.fields(cls)}:
        raise ValueError(f"not a {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kw = {}
    for name, value in raw.items():
        kw[name] = _as(hints[name], value)
    return cls(**kw)


def _as(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is frozenset:
        if not isinstance(value, list):
            raise ValueError("expected a list")
        return frozenset(value)
    if origin is tuple:
        if not isinstance(value, list):
            raise ValueError("expected a list")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_as(args[0], v) for v in value)
        return tuple(_as(a, v) for a, v in zip(args, value, strict=True))
    if hint in (str, bool, int, float) and not isinstance(value, hint):
        raise ValueError(f"expected {hint.__name__}")
    return value


def _convention(value: Any) -> Any:
    """A convention as data: a Convention's fields, or the name of one of ``keras_losses``'s functions
    that choose a convention per problem (only those names are accepted back)."""
    if isinstance(value, Convention):
        return _plain(value)
    name = getattr(value, "__name__", "")
    if _CHOOSERS().get(name) is not value:
        raise TypeError(f"cannot cache the convention {value!r}")
    return {"chosen_by": name}


def _CHOOSERS() -> dict:  # noqa: N802 - a constant computed on use (keras_losses imports no Keras)
    from . import keras_losses

    return {n: f for n, f in vars(keras_losses).items() if n.endswith("_convention") and callable(f)}


def _build_convention(raw: Any) -> Any:
    if isinstance(raw, dict) and set(raw) == {"chosen_by"}:
        chooser = _CHOOSERS().get(raw["chosen_by"]) if isinstance(raw["chosen_by"], str) else None
        if chooser is None:
            raise ValueError("unknown convention chooser")
        return chooser
    return _build(Convention, raw)


def dumps(hello: dict) -> str:
    """The declaration as JSON text (``hello``: environment and a list of declared bindings)."""
    return json.dumps(
        {
            "format": FORMAT,
            "environment": hello["environment"],
            "bindings": [
                {
                    "name": d.name,
                    "api": d.api,
                    "doc": d.doc,
                    "caps": _plain(d.caps),
                    "convention": _convention(d.convention),
                }
                for d in hello["bindings"]
            ],
        },
        allow_nan=False,
    )


def load(path: Path, declared: type) -> dict | None:
    """The declaration cached at ``path`` (bindings as ``declared`` objects), or None when the file is
    missing or not exactly a declaration of this format (it is then ignored: nothing in it runs)."""
    try:
        raw = json.loads(path.read_text(), parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))
        if (
            not isinstance(raw, dict)
            or raw.get("format") != FORMAT
            or not isinstance(raw.get("environment"), dict)
            or not isinstance(raw.get("bindings"), list)
            or non_finite(raw)
        ):
            return None
        bindings = []
        for b in raw["bindings"]:
            if (
                not isinstance(b, dict)
                or set(b) != {"name", "api", "doc", "caps", "convention"}
                or not all(isinstance(b[k], str) for k in ("name", "api", "doc"))
            ):
                return None
            bindings.append(
                declared(
                    b["name"], b["api"], _build(Capabilities, b["caps"]), _build_convention(b["convention"]), b["doc"]
                )
            )
        hello = {"environment": raw["environment"], "bindings": bindings}
        return hello if json.loads(dumps(hello)) == raw else None  # exactly what this code writes
    except (OSError, ValueError, TypeError, KeyError, RecursionError, UnicodeDecodeError):
        return None
