"""The JSON Schema of a ``[[case]]`` declaration (see ``cases/README.md``): key names, types and ranges.

Rules that tie keys together (a target kind against the ops, explicit values against ``shape``) are
checked in code after this (``cases.loader._check``), each with its own one-line message.
"""

from __future__ import annotations

from xentcheck.problem import DTYPES, MALFORMED, OPS, REDUCTIONS

TARGET_KINDS = ("index", "onehot", "soft", "binary")

_NUMBER = {"type": "number"}
_INDEX = {"type": "integer", "minimum": 0}
_ROWS = {"type": "array", "items": _INDEX, "x-expects": "a list of row indices"}
_NESTED_NUMBERS = {
    "type": "array",
    "x-expects": "a (nested) list of numbers",
    "items": {"anyOf": [_NUMBER, {"$ref": "#/$defs/nested"}]},
}


_NESTED_BOOLS = {"type": "array", "items": {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/nested_bool"}]}}
#: op linear_ce: how hidden states X, the classifier W and its bias are drawn (cases/linear.py)
_LINEAR = {
    "title": "linear",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "hidden": {"title": "linear.hidden", "type": "integer", "minimum": 1},
        "x_scale": {"title": "linear.x_scale", "type": "number", "exclusiveMinimum": 0},
        "logit_scale": {"title": "linear.logit_scale", "type": "number", "exclusiveMinimum": 0},
        "bias": {
            "title": "linear.bias",
            "anyOf": [{"type": "boolean"}, {"type": "number", "exclusiveMinimum": 0}],
            "x-expects": "true or the bias's scale",
        },
        "offset": {"title": "linear.offset", **_NUMBER},
        "confident": {"title": "linear.confident", "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "pad": {
            "title": "linear.pad",
            "type": "object",
            "required": ["classes", "value"],
            "additionalProperties": False,
            "properties": {
                "classes": {"title": "linear.pad.classes", "type": "integer", "minimum": 1},
                "value": {
                    "title": "linear.pad.value",
                    "anyOf": [_NUMBER, {"enum": ["-inf"]}],
                    "x-expects": 'a number or "-inf"',
                },
            },
        },
        "softcap": {"title": "linear.softcap", "type": "number", "exclusiveMinimum": 0},
        "z_loss": {"title": "linear.z_loss", "type": "number", "minimum": 0},
        # a real vocabulary: seconds per check in Triton's interpreter, so run with --large-vocab only
        "large": {"title": "linear.large", "type": "boolean"},
    },
}


def _values_file(title: str) -> dict:
    """Explicit values kept in a NumPy file beside the declaration: ``x.npy`` or ``x.npz:KEY``."""
    return {
        "title": f"{title}.values_file",
        "type": "string",
        "pattern": r"^[^:]+\.(npy|npz)(:.+)?$",
        "x-message": "values_file is the name of a .npy file, or FILE.npz:KEY, beside the declaration",
    }


def _expected_value_spec() -> dict:
    """``expected.value``: like an array, or one number (the loss of a reducing case)."""
    spec = _array_spec("expected.value")
    values = spec["properties"]["values"]
    spec["properties"] = {
        **spec["properties"],
        "values": {"title": values["title"], "x-expects": "a number or a (nested) list of numbers",
                   "anyOf": [_NUMBER, {k: v for k, v in values.items() if k != "title"}]},
    }  # fmt: skip
    return spec


def _array_spec(title: str) -> dict:
    """``logits`` / ``probs``: a generator (dist and its parameters) or explicit ``values``."""
    return {
        "title": title,
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "dist": {"title": f"{title}.dist", "enum": ["normal", "uniform"]},
            "scale": {"title": f"{title}.scale", "type": "number", "exclusiveMinimum": 0},
            "low": {"title": f"{title}.low", **_NUMBER},
            "high": {"title": f"{title}.high", **_NUMBER},
            "row_scales": {"title": f"{title}.row_scales", "type": "array", "items": _NUMBER, "minItems": 1},
            "values": {"title": f"{title}.values", **_NESTED_NUMBERS},
            "values_file": _values_file(title),
        },
    }


def _weights(title: str) -> dict:
    """A number, a list, a random table ``{ low, high }`` (``per_element``: a sample weight for every
    element of a spatial input, (N, d1, ...)), or explicit ``values`` / a ``values_file``."""
    return {
        "title": title,
        "x-expects": "a number, a list of numbers, a table { low, high } or { values_file }",
        "anyOf": [
            _NUMBER,
            {"type": "array", "items": _NUMBER},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"low": _NUMBER, "high": _NUMBER, "per_element": {"type": "boolean"}},
            },
            {
                "type": "object",
                "additionalProperties": False,
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {"values": _NESTED_NUMBERS, "values_file": _values_file(title)},
            },
        ],
    }


def _explicit(title: str, what: str) -> dict:
    """An explicit array: ``values`` or a ``values_file``."""
    return {
        "title": title,
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "x-expects": f"a table {{ values }} or {{ values_file }} holding {what}",
        "properties": {"values": {"title": f"{title}.values", **_NESTED_NUMBERS}, "values_file": _values_file(title)},
    }


def case_schema(categories: tuple[str, ...] | None) -> dict:
    """The schema of one case table; ``categories`` are the names a case may file itself under (None:
    any name, for cases from outside the repository)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": {"nested": _NESTED_NUMBERS, "nested_bool": _NESTED_BOOLS},
        "type": "object",
        "required": ["name", "category", "ops", "shape", "seed", "targets"],
        "additionalProperties": False,
        "anyOf": [{"required": ["logits"]}, {"required": ["probs"]}, {"required": ["linear"]}],
        "x-message": "needs 'logits' or 'probs' (op linear_ce: 'linear')",
        "properties": {
            "name": {
                "title": "name",
                "type": "string",
                "pattern": "^[a-z0-9_]+$",
                "x-message": "name must be lower-case letters, digits and '_' (it is part of test ids)",
            },
            "category": {"title": "category", "enum": list(categories)}
            if categories
            else {"title": "category", "type": "string", "minLength": 1},
            "description": {"title": "description", "type": "string"},
            "ops": {
                "title": "ops",
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"title": "op", "enum": list(OPS)},
            },
            "shape": {
                "title": "shape",
                "type": "array",
                "minItems": 2,
                "x-expects": "a list of sizes like [4, 3]",
                "items": {"title": "a size in shape", "type": "integer", "minimum": 0},
            },
            "seed": {"title": "seed", "type": "integer", "minimum": 0},
            "logits": _array_spec("logits"),
            "probs": _array_spec("probs"),
            "expected": {
                "title": "expected",
                "type": "object",
                "additionalProperties": False,
                "required": ["value", "source"],
                "x-expects": "a table: value (values or values_file), source; optionally mean_by, dtype, "
                "mean_last_axis, policies, decimals, rounding, test, literal, licence",
                "properties": {
                    "value": _expected_value_spec(),
                    "source": {
                        "title": "expected.source",
                        "type": "string",
                        "pattern": "^https?://",
                        "x-message": "expected.source must be a link to where the values come from",
                    },
                    "mean_by": {
                        "title": "expected.mean_by",
                        "enum": ["count", "valid_count", "weight_sum", "nonzero_weight_count"],
                    },
                    "dtype": {"title": "expected.dtype", "enum": ["float16", "bfloat16", "float32", "float64"]},
                    "mean_last_axis": {"title": "expected.mean_last_axis", "type": "boolean"},
                    "policies": {
                        "title": "expected.policies",
                        "type": "object",
                        "x-expects": "a table of the oracle policies the source computes under, e.g. "
                        '{ prob_clip = 1e-7, renormalize = "before_clip" }',
                    },
                    "decimals": {
                        "title": "expected.decimals",
                        "x-expects": "the decimal places the source printed: a number, or one per value",
                        "anyOf": [
                            {"type": "integer", "minimum": 0},
                            {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        ],
                    },
                    "rounding": {"title": "expected.rounding", "enum": ["nearest", "truncated"]},
                    "test": {"title": "expected.test", "type": "string"},
                    "literal": {"title": "expected.literal", "type": "string"},
                    "licence": {"title": "expected.licence", "type": "string"},
                },
            },
            "targets": {
                "title": "targets",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "kind": {"title": "targets.kind", "enum": list(TARGET_KINDS)},
                    "values": {"title": "targets.values", **_NESTED_NUMBERS},
                    "values_file": _values_file("targets"),
                    "alpha": {"title": "targets.alpha", "type": "number", "exclusiveMinimum": 0},
                    "zeros": {"title": "targets.zeros", "type": "number", "minimum": 0, "exclusiveMaximum": 1},
                    "p": {"title": "targets.p", "type": "number", "minimum": 0, "maximum": 1},
                    "total": {
                        "title": "targets.total",
                        "type": "object",
                        "required": ["low", "high"],
                        "additionalProperties": False,
                        "properties": {"low": _NUMBER, "high": _NUMBER},
                    },
                },
            },
            "reductions": {
                "title": "reductions",
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"title": "reduction", "enum": list(REDUCTIONS)},
            },
            "dtypes": {
                "title": "dtypes",
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"title": "dtype", "enum": list(DTYPES)},
            },
            "class_weight": _weights("class_weight"),
            "sample_weight": _weights("sample_weight"),
            "pos_weight": _weights("pos_weight"),
            "ignore_index": {"title": "ignore_index", "type": "integer"},
            "ignore_fraction": {"title": "ignore_fraction", "type": "number", "minimum": 0, "maximum": 1},
            "label_smoothing": {"title": "label_smoothing", "type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "mask": {
                "title": "mask",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "fraction": {"title": "mask.fraction", "type": "number", "minimum": 0, "maximum": 1},
                    "on_target": {"title": "mask.on_target", **_ROWS},
                    "rows": {"title": "mask.rows", **_ROWS},
                },
            },
            "where": {
                "title": "where",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "fraction": {"title": "where.fraction", "type": "number", "minimum": 0, "maximum": 1},
                    "on_target": {"title": "where.on_target", **_ROWS},
                    "rows": {"title": "where.rows", **_ROWS},
                    # the mask itself (1 or true: the class takes part), shaped like the input
                    "values": {
                        "title": "where.values",
                        "type": "array",
                        "x-expects": "a (nested) list of 0/1 or true/false",
                        "items": {
                            "anyOf": [
                                {"type": "boolean"},
                                _NUMBER,
                                {"$ref": "#/$defs/nested"},
                                {"$ref": "#/$defs/nested_bool"},
                            ]
                        },
                    },
                    "values_file": _values_file("where"),
                },
            },
            "cotangent": _explicit("cotangent", "the upstream gradient of the unreduced output"),
            "poison": {
                "title": "poison",
                "type": "object",
                "required": ["value", "rows"],
                "additionalProperties": False,
                "properties": {
                    "value": {"title": "poison.value", "enum": ["nan", "inf", "-inf"]},
                    "rows": {"title": "poison.rows", **_ROWS},
                    "column": {"title": "poison.column", **_INDEX},
                },
            },
            "invalid": {
                "title": "invalid",
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "value": {"title": "invalid.value", "type": "integer"},
                    "rows": {"title": "invalid.rows", **_ROWS},
                    "form": {"title": "invalid.form", "enum": list(MALFORMED)},
                },
            },
            "channels_first": {"title": "channels_first", "type": "boolean"},
            "linear": _LINEAR,
        },
    }
