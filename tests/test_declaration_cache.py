"""The Keras backends' declaration cache holds data only: JSON rebuilt field by field, a planted file
ignored (never run)."""

import json
import pickle
from dataclasses import dataclass
from typing import Any

from adapters import declaration_cache
from xentcheck.protocol import Capabilities
from xentcheck.reference import Convention


@dataclass
class Declared:
    name: str
    api: str
    caps: Any
    convention: Any
    doc: str


HELLO = {
    "environment": {"keras": "3.0", "jax": "0.4"},
    "bindings": [
        Declared(
            "k.sparse",
            "keras.losses.sparse",
            Capabilities(
                "softmax_ce",
                frozenset({"index"}),
                min_classes=(2, "why"),
                requires=(("where", "optax", ">=1"),),
                unavailable=(("where", "old"),),
            ),
            Convention(mean_by="weight_sum", prob_clip=1e-7),
            "doc",
        )
    ],
}


def test_a_declaration_round_trips_exactly(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(declaration_cache.dumps(HELLO))
    back = declaration_cache.load(path, Declared)
    assert back == HELLO


def test_a_planted_pickle_is_ignored_not_run(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "c.json"
    path.write_bytes(pickle.dumps(Payload()))
    assert declaration_cache.load(path, Declared) is None and not marker.exists()


def test_a_json_that_is_not_exactly_a_declaration_is_ignored(tmp_path):
    good = json.loads(declaration_cache.dumps(HELLO))
    path = tmp_path / "c.json"
    for bad in (
        {**good, "format": 99},
        {**good, "bindings": [{**good["bindings"][0], "extra": 1}]},
        {**good, "bindings": [{**good["bindings"][0], "caps": {"op": 3}}]},
        [],
        "x",
    ):
        path.write_text(json.dumps(bad))
        assert declaration_cache.load(path, Declared) is None
    path.write_text(declaration_cache.dumps(HELLO).replace('"3.0"', "NaN"))
    assert declaration_cache.load(path, Declared) is None


def test_the_cache_file_is_json(monkeypatch, tmp_path):
    from adapters import keras_backends

    monkeypatch.setenv("XENTCHECK_KERAS_CACHE", str(tmp_path))
    assert keras_backends._declaration_cache("numpy").suffix == ".json"
