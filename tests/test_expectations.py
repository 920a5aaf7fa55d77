"""The expectations registry: validation and matching."""

from dataclasses import replace
from pathlib import Path

import pytest

from xentcheck.check import Check
from xentcheck.expectations import ExpectationError, load_registry

ROOT = Path(__file__).resolve().parent.parent

ENTRY = """
[[expectation]]
id = "x"
framework = "torch"
bindings = ["F.binary_cross_entropy"]
versions = ">=2.0,<3"
expect = { log_clamp = -100.0 }
reason = "r"
source = "https://example.invalid"
"""


def test_the_project_registry_loads_and_every_entry_has_a_source():
    reg = load_registry([ROOT / "suites" / "expectations.toml"])
    assert reg.entries
    for e in reg.entries:
        assert e.source.startswith("https://") and e.reason


def test_version_ranges_apply_only_where_they_hold(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text(ENTRY)
    e = load_registry([f]).entries[0]
    key = Check("torch", "F.binary_cross_entropy", "c", "float32", kind="value", category="cat")
    assert e.applies(key, {"torch": "2.13.0+cpu"})
    assert not e.applies(key, {"torch": "3.0.0"})
    assert not e.applies(key, {})


def test_a_reductions_filter_covers_only_that_reduction_path(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text(ENTRY.replace('versions = ">=2.0,<3"', 'reductions = ["mean"]'))
    reg = load_registry([f])
    e = reg.entries[0]
    key = Check("torch", "F.binary_cross_entropy", "c", "float32", kind="value", category="cat")
    assert e.applies(replace(key, reduction="mean"), {})
    assert not e.applies(replace(key, reduction="none"), {}) and not e.applies(replace(key, reduction="sum"), {})
    assert reg.find(replace(key, reduction="mean"), {}) is e and reg.find(replace(key, reduction="none"), {}) is None


def test_a_calling_variant_has_its_binding_s_entries_and_its_own():
    from xentcheck.protocol import variant_of

    assert variant_of("F.linear_cross_entropy[retain_graph]") == "F.linear_cross_entropy"
    assert variant_of("F.binary_cross_entropy") == "F.binary_cross_entropy" == variant_of("F.binary_cross_entropy")
    assert variant_of("[x]") == "[x]" and variant_of("a[b") == "a[b"
    f = ROOT / "suites" / "expectations.toml"
    reg = load_registry([f])
    key = Check("torch", "F.binary_cross_entropy[no_grad]", "c", "float32", kind="value", category="cat")
    base = reg.find(replace(key, binding="F.binary_cross_entropy"), {"torch": "2.13.0"})
    variant = reg.find(key, {"torch": "2.13.0"})
    assert base is not None and variant is not None and variant.id == base.id
    own = Check("torch", "liger.FusedLinearCrossEntropyLoss[grad X, then W]", "c", "float32", "eager", "sum", "grad")
    plain = replace(own, binding="liger.FusedLinearCrossEntropyLoss")
    versions = {"torch": "2.13.0", "liger-kernel": "0.8.5"}
    assert "liger-flce-frozen-input-no-weight-grad" in reg.find(own, versions).id
    assert "frozen" not in getattr(reg.find(plain, versions), "id", "")


@pytest.mark.parametrize(
    "edit, message",
    [
        (("log_clamp", "log_clmap"), "not an oracle policy"),
        (('source = "https://example.invalid"', 'source = "see docs"'), "must be a link"),
        (('versions = ">=2.0,<3"', 'versions = "two"'), "not a version specifier"),
        (('reason = "r"', 'why = "r"'), "unknown key 'why'"),
        # types come from the schema, the policies' from the oracle's Convention
        (('versions = ">=2.0,<3"', "versions = 2"), "versions = 2: expected a version specifier"),
        (("{ log_clamp = -100.0 }", '{ prob_clip = "big" }'), "expect.prob_clip = 'big': expected a number"),
        (("{ log_clamp = -100.0 }", '{ invalid_targets = "maybe" }'), "expect.invalid_targets 'maybe' is not one of"),
    ],
)
def test_malformed_entries_are_one_line(tmp_path, edit, message):
    f = tmp_path / "bad.toml"
    f.write_text(ENTRY.replace(*edit))
    with pytest.raises(ExpectationError) as e:
        load_registry([f])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_entries_that_apply_together_combine(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text(
        ENTRY + ENTRY.replace('id = "x"', 'id = "y"').replace("{ log_clamp = -100.0 }", '{ compute_dtype = "float32" }')
    )
    hit = load_registry([f]).find(
        Check("torch", "F.binary_cross_entropy", "c", "float64", kind="value", category="cat"), {"torch": "2.1"}
    )
    assert hit.id == "x+y" and hit.expect == {"log_clamp": -100.0, "compute_dtype": "float32"}


def test_an_entry_narrowed_to_a_mode_applies_only_there(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text(ENTRY.replace('versions = ">=2.0,<3"', 'modes = ["compiled"]'))
    e = load_registry([f]).entries[0]
    key = Check("torch", "F.binary_cross_entropy", "c", "float32", kind="value", category="cat")
    assert e.applies(replace(key, mode="compiled"), {}) and not e.applies(replace(key, mode="eager"), {})
    f.write_text(ENTRY.replace('versions = ">=2.0,<3"', 'modes = ["jit"]'))
    with pytest.raises(ExpectationError, match="modes entry 'jit' is not one of: eager, compiled"):
        load_registry([f])


def test_the_registry_index_finds_what_a_scan_of_every_entry_finds():
    """Registry.find looks entries up by (framework, binding, check kind): for every entry's own keys it
    returns what applying every entry in turn returns."""
    from xentcheck.check import Check

    reg = load_registry([ROOT / "suites" / "expectations.toml"])
    for e in reg.entries:
        for fw in e.frameworks:
            for b in e.bindings:
                for kind in e.checks:
                    key = Check(
                        fw,
                        b,
                        "any",
                        (e.dtypes or ("float32",))[0],
                        (e.modes or ("eager",))[0],
                        (e.reductions or ("mean",))[0],
                        kind,
                    )
                    scan = [x for x in reg.entries if x.applies(key, {}, None)]
                    found = reg.find(key, {}, None)
                    assert (found.id if found else None) == ("+".join(x.id for x in scan) or None)
