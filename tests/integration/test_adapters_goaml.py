"""goAML through the API: an FIU imports a report as a disclosure (original attached), and a
recipient configured with the goaml adapter receives it as a schema-valid goAML file."""

from __future__ import annotations

import base64
from pathlib import Path

from sqlalchemy import Engine

from adapters import goaml
from tests.conftest import Api, count_rows
from tests.integration.test_delivery_helpers import deliver_once

VECTORS = Path(__file__).parents[1] / "vectors" / "goaml"
RECIPIENT = "de.bka"


def test_a_goaml_report_travels_as_a_disclosure_and_leaves_as_goaml(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    xml = (VECTORS / "golden_STR.xml").read_bytes()
    draft = goaml.disclosure_draft(
        xml,
        recipient=RECIPIENT,
        legal_basis="Egmont Principles for Information Exchange",
        purpose="money laundering analysis 7/2026",
        name="golden_STR.xml",
    )
    out = tmp_path / "goaml-in"
    out.mkdir()
    r = api.request(
        "PUT",
        f"/v1/participants/{RECIPIENT}/adapter",
        as_="it.admin",
        json={"adapter": "goaml", "config": {"directory": str(out), "currency": "AED"}},
    )
    assert r.status_code == 200, r.text
    sent = api.post("/v1/messages", as_="nl.officer", json={"draft": draft})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]

    assert deliver_once(api.settings).delivered == 1
    written = (out / f"{message_id}.xml").read_bytes()
    goaml.validate(written)
    assert goaml.decode(written) == goaml.decode(xml)
    assert [p.name for p in out.iterdir()] == [f"{message_id}.xml"]

    # The sender's copy carries the original, byte for byte, and its digest.
    content = api.get(
        f"/v1/messages/{message_id}/content",
        as_="nl.officer",
        params={"justification": "checking the disclosed report"},
    ).json()
    attachment = content["payload"]["attachments"][0]
    original = base64.b64decode(content["payload"]["body"]["original"]["content_base64"])
    assert original == xml
    assert attachment["size"] == len(xml)
    assert count_rows(sync_engine, "audit_events", "kind = 'message:delivered'") == 1


def test_only_disclosures_go_to_a_goaml_recipient(api: Api, tmp_path: Path) -> None:
    from tests.integration.messaging_helpers import envelope

    out = tmp_path / "goaml-in"
    out.mkdir()
    api.request(
        "PUT",
        "/v1/participants/it.central-authority/adapter",
        as_="it.admin",
        json={"adapter": "goaml", "config": {"directory": str(out)}},
    )
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert deliver_once(api.settings).dead_lettered == 1
    [attempt] = api.get(f"/v1/messages/{r.json()['id']}", as_="de.system").json()["attempts"]
    assert attempt["outcome"] == "rejected"
    assert "fiu.disclosure only" in attempt["error"]
    assert list(out.iterdir()) == []
