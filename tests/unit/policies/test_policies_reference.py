"""Reference data: the shipped tables, an alternative directory, and its error messages."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.engine import default_policy, evaluate, reference_compared
from policies.model import Context
from policies.reference import (
    DATA_DIR,
    FLAGGED_GROUP,
    ReferenceDataError,
    channels_for,
    groups_for,
    is_flagged,
    jurisdiction_of,
    languages_for,
    load_reference_data,
    make_party,
    treaties_between,
    with_reference_data,
)

REQUIRED = {"IT", "NL", "DE", "US", "FR", "ES", "GB", "CH"}


def test_shipped_data_covers_the_required_jurisdictions_and_a_flagged_one() -> None:
    data = load_reference_data()
    assert set(data.jurisdictions) >= REQUIRED
    flagged = [code for code, j in data.jurisdictions.items() if j.flagged]
    assert flagged
    assert all(FLAGGED_GROUP in groups_for(code) for code in flagged)
    assert not any(is_flagged(code) for code in REQUIRED)
    for code in REQUIRED:
        assert languages_for(code), code
        assert "central_authority" in channels_for(code), code
        assert {"untoc-party", "egmont-member"} <= groups_for(code), code


def test_groups() -> None:
    assert {"eu", "eea", "led", "schengen"} <= groups_for("IT")
    assert "eu" not in groups_for("CH")
    assert "led" in groups_for("CH")
    assert "led-adequacy" in groups_for("GB")
    assert groups_for("ZZ") == frozenset()


def test_treaties_between() -> None:
    assert {"untoc", "uncac", "eu-eio", "coe-mla-1959"} <= treaties_between("IT", "DE")
    it_us = treaties_between("IT", "US")
    assert {"untoc", "it-us-mlat-1982", "eu-us-mla-2003"} <= it_us
    assert "eu-eio" not in it_us
    assert "eu-us-mla-2003" not in treaties_between("IT", "DE")
    assert treaties_between("IT", "IT") == frozenset()
    assert treaties_between("IT", "ZZ") == frozenset()
    assert treaties_between("US", "IT") == it_us


def test_jurisdiction_of() -> None:
    assert jurisdiction_of("it.central-authority") == "IT"
    for bad in ("central-authority", "ita.fiu", "1t.fiu"):
        with pytest.raises(ValueError, match="iso alpha-2"):
            jurisdiction_of(bad)


def test_make_party() -> None:
    party = make_party("nl.fiu", "fiu")
    assert (party.jurisdiction, party.active) == ("NL", True)
    assert "egmont-member" in party.groups
    assert make_party("x.y", "fiu", jurisdiction="US", active=False).groups == groups_for("US")


def test_with_reference_data_fills_the_state_fields() -> None:
    ctx = Context(
        sender=make_party("it.central-authority", "central_authority"),
        recipient=make_party("xa.central-authority", "central_authority"),
        message_type="mla.request",
    )
    filled = with_reference_data(ctx)
    assert "untoc" in filled.treaties
    assert filled.flagged_jurisdiction
    assert filled.accepted_languages == languages_for("XA")
    assert filled.notified_channels == channels_for("XA")


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(DATA_DIR, target)
    return target


def edit(directory: Path, name: str, change: Callable[[Any], object]) -> None:
    path = directory / name
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def test_an_edited_copy_is_loaded(data_copy: Path) -> None:
    edit(data_copy, "flagged.yaml", lambda d: d["flagged"].update({"US": {"reason": "test"}}))
    data = load_reference_data(data_copy)
    assert data.is_flagged("US")
    assert not load_reference_data().is_flagged("US")
    assert groups_for("US", data) >= {FLAGGED_GROUP}


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "groups.yaml",
            lambda d: d["groups"]["eu"]["members"].append("QQ"),
            "groups.eu.members: unknown jurisdiction 'QQ'",
        ),
        (
            "treaties.yaml",
            lambda d: d["instruments"]["untoc"].pop("parties"),
            "instruments.untoc: give exactly one",
        ),
        (
            "flagged.yaml",
            lambda d: d["flagged"].update({"QQ": {"reason": "x"}}),
            "flagged: unknown jurisdiction 'QQ'",
        ),
        ("flagged.yaml", lambda d: d["flagged"]["XA"].update({"reason": ""}), "flagged.XA.reason"),
        (
            "jurisdictions.yaml",
            lambda d: d["jurisdictions"]["IT"].update({"mla_channels": ["fax"]}),
            "unknown channel 'fax'",
        ),
        (
            "jurisdictions.yaml",
            lambda d: d["jurisdictions"].update({"ita": d["jurisdictions"]["IT"]}),
            "not an ISO alpha-2 code",
        ),
        (
            "groups.yaml",
            lambda d: d["groups"].update({FLAGGED_GROUP: {"members": []}}),
            "derived from flagged.yaml",
        ),
    ],
)
def test_inconsistent_data_is_refused(
    data_copy: Path, name: str, change: Callable[[Any], object], message: str
) -> None:
    edit(data_copy, name, change)
    with pytest.raises(ReferenceDataError) as caught:
        load_reference_data(data_copy)
    assert str(data_copy / name) in str(caught.value)
    assert message in str(caught.value)


def test_a_missing_file_is_refused(data_copy: Path) -> None:
    (data_copy / "treaties.yaml").unlink()
    with pytest.raises(ReferenceDataError, match=r"treaties\.yaml: cannot read"):
        load_reference_data(data_copy)


def test_norway_written_bare_is_caught(data_copy: Path) -> None:
    """YAML reads a bare NO as false; the loader must not take it silently."""
    path = data_copy / "groups.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("[DE, ES, FR, IT, NL]", "[DE, NO]", 1))
    with pytest.raises(ReferenceDataError, match="expected a list of strings"):
        load_reference_data(data_copy)


def test_a_refusal_can_name_the_reference_data_its_rule_compared_with() -> None:
    """P1.language, P2.channel and MLA.legal-basis compare with the requested State's
    reference data; ``reference_compared`` gives it for the refusal to name (18(13)-(14))."""
    ctx = with_reference_data(
        Context(
            sender=make_party("it.central-authority", "central_authority"),
            recipient=make_party("us.central-authority", "central_authority"),
            message_type="mla.request",
            language="it",
            channel="direct_judicial",
        )
    )
    policy = default_policy()
    denied = {r.rule_id for r in evaluate(ctx, policy).reasons}
    assert {"P1.language", "P2.channel"} <= denied
    assert reference_compared(policy, "P1.language", ctx) == {
        "accepted_languages": sorted(languages_for("US"))
    }
    assert reference_compared(policy, "P2.channel", ctx) == {
        "notified_channels": sorted(channels_for("US"))
    }
    assert reference_compared(policy, "MLA.legal-basis", ctx) == {
        "treaties": sorted(treaties_between("IT", "US"))
    }
    # a rule that reads no reference data, and an id no pack has, name nothing
    assert reference_compared(policy, "P1.signatory", ctx) == {}
    assert reference_compared(policy, "policy.default-deny", ctx) == {}
