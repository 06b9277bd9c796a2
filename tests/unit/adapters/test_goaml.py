"""goAML 5.0.2: the shipped (patched) schema, import of the golden reports as disclosures,
export back to schema-valid XML, and what is refused."""

from __future__ import annotations

import base64
import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from adapters import goaml

VECTORS = Path(__file__).parents[2] / "vectors" / "goaml"
XS = "{http://www.w3.org/2001/XMLSchema}"


def _golden(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_the_shipped_schema_is_the_vector_and_no_active_pattern_is_anchored() -> None:
    assert goaml.SCHEMA_PATH.read_bytes() == (VECTORS / "goAMLSchema-5.0.2.xsd").read_bytes()
    patterns = [
        p.get("value", "") for p in ET.parse(goaml.SCHEMA_PATH).getroot().iter(f"{XS}pattern")
    ]
    assert len(patterns) == 29  # comments (the FIU's URL pattern) are not patterns
    assert not [p for p in patterns if p.startswith("^") or p.endswith("$")]


def test_the_unpatched_anchored_patterns_reject_the_golden_reports() -> None:
    """Why the patch: in XSD regular expressions ^ and $ are literal characters."""
    text = goaml.SCHEMA_PATH.read_text()
    unpatched, count = re.subn(
        r"""<xs:pattern value="\[a-zA-Z0-9 \.'-\]\*" />""",
        """<xs:pattern value="^[a-zA-Z0-9 .'-]*$" />""",
        text,
    )
    assert count == 26
    original = xmlschema.XMLSchema11(unpatched, base_url=str(goaml.SCHEMA_PATH.parent))
    for name in ("golden_STR.xml", "golden_SAR.xml"):
        assert not original.is_valid(_golden(name).decode())
        goaml.validate(_golden(name))  # the patched schema accepts them


def test_an_str_becomes_a_disclosure_with_its_transactions_parties_and_original() -> None:
    xml = _golden("golden_STR.xml")
    draft = goaml.disclosure_draft(
        xml,
        recipient="de.bka",
        legal_basis="Egmont Principles",
        purpose="ML analysis 7/2026",
        name="golden_STR.xml",
    )
    assert draft["type"] == "fiu.disclosure"
    digest = hashlib.sha256(xml).hexdigest()
    assert draft["attachments"] == [
        {
            "name": "golden_STR.xml",
            "media_type": "application/xml",
            "size": len(xml),
            "sha256": digest,
        }
    ]
    body = draft["body"]
    assert base64.b64decode(body["original"]["content_base64"]) == xml
    assert (body["report_code"], body["entity_reference"]) == ("STR", "STR-2026-0042")
    [tx] = body["transactions"]
    assert tx["number"] == "TXN-987654"
    assert tx["amount_local"] == "120000.00"
    assert tx["from"] == {
        "kind": "person",
        "name": "Layla Hassan",
        "country": "AE",
        "funds": "CASH",
    }
    assert tx["to"] == {"kind": "person", "name": "John Smith", "country": "GB", "funds": "BANKD"}


def test_a_sar_maps_its_activity_parties() -> None:
    body = goaml.disclosure_draft(
        _golden("golden_SAR.xml"), recipient="de.bka", legal_basis="x", purpose="y"
    )["body"]
    assert body["transactions"] == []
    [party] = body["parties"]
    assert (party["kind"], party["name"], party["significance"]) == ("person", "Aisha Mahmoud", 8)
    assert body["indicators"] == ["STRUC"]


@pytest.mark.parametrize("name", ["golden_STR.xml", "golden_SAR.xml"])
def test_an_imported_report_exports_back_to_the_same_valid_report(name: str) -> None:
    xml = _golden(name)
    draft = goaml.disclosure_draft(xml, recipient="de.bka", legal_basis="x", purpose="y")
    exported = goaml.disclosure_to_report({"body": draft["body"]})
    goaml.validate(exported)
    assert goaml.decode(exported) == goaml.decode(xml)


def test_a_disclosure_from_elsewhere_exports_as_a_valid_sar() -> None:
    payload = {
        "id": "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10",
        "sender": "nl.fiu",
        "created_at": "2026-11-22T10:00:00+01:00",
        "legal_basis": "Egmont Principles",
        "body": {"summary": "Funds moved through three shell companies", "indicators": ["STRUC"]},
    }
    report = goaml.decode(goaml.disclosure_to_report(payload))
    assert (report["report_code"], report["submission_date"]) == ("SAR", "2026-11-22T09:00:00")
    assert report["reason"] == "Funds moved through three shell companies"
    del payload["body"]["indicators"]  # type: ignore[attr-defined]
    with pytest.raises(goaml.GoamlInvalid, match="report indicator"):
        goaml.disclosure_to_report(payload)


def test_an_invalid_report_is_refused_with_where_and_why() -> None:
    broken = _golden("golden_STR.xml").replace(b"<rentity_id>101</rentity_id>", b"")
    with pytest.raises(goaml.GoamlInvalid) as caught:
        goaml.disclosure_draft(broken, recipient="de.bka", legal_basis="x", purpose="y")
    assert "rentity_id" in caught.value.detail
    assert caught.value.extra["errors"][0]["field"].startswith("/report")


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<report>&e;</report>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
        b"<report>&b;</report>",
        b"<report><unclosed></report>",
    ],
)
def test_hostile_or_malformed_xml_is_refused(xml: bytes) -> None:
    with pytest.raises(goaml.GoamlInvalid):
        goaml.decode(xml)
