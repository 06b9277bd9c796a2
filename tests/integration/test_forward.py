"""Onward transmission through the HTTP API (issue 4, item 5): a forward is a new envelope
that references the original, inherits its restrictions, and is decided against the
original's purpose, handling code and named recipients (UNTOC 18(19), SIENA, Egmont)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, cast

from sqlalchemy import Engine, text

from broker.client import sign
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import INTEL, LEGAL, payload, relay
from tests.integration.test_messages import assert_problem

FIU_DISCLOSURE: dict[str, Any] = {
    "type": "fiu.disclosure",
    "recipient": "it.central-authority",
    "legal_basis": "Egmont Principles",
    "purpose": "money laundering analysis",
    "body": {"summary": "transfers from ACME Ltd to a shell company in Valletta"},
}


def problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    """The problem document, checked for status and type (``assert_problem``, typed)."""
    return cast(dict[str, Any], assert_problem(response, status, slug))


def register(api: Api, participant_id: str, kind: str = "police") -> str:
    r = api.post(
        "/v1/participants",
        as_="it.admin",
        json={"id": participant_id, "kind": kind, "display_name": participant_id},
    )
    assert r.status_code == 201, r.text
    return participant_id


def delivered(api: Api, as_: str, draft: dict[str, Any]) -> str:
    """Submit a draft as ``as_`` and deliver it; return its id."""
    r = api.post("/v1/messages", as_=as_, json={"draft": draft})
    assert r.status_code == 202, r.text
    relay(api.settings)
    return str(r.json()["id"])


def intel_from_bka(api: Api, **over: Any) -> str:
    """An intelligence message de.bka sends it.central-authority, delivered."""
    key = api.world.keys["de.bka"]
    r = api.post("/v1/messages", as_="de.system", json=sign(key, payload(key, **over)))
    assert r.status_code == 202, r.text
    relay(api.settings)
    return str(r.json()["id"])


def inner(api: Api, answer: dict[str, Any], as_: str = "it.officer") -> dict[str, Any]:
    """The payload of the forward just sent, read by its sender through the logged content
    route (the answer carries only its digest and signatures), checked against that digest."""
    assert "payload" not in answer["envelope"]
    r = api.get(
        f"/v1/messages/{answer['id']}/content",
        as_=as_,
        params={"justification": "checking the forward we sent"},
    )
    assert r.status_code == 200, r.text
    raw = base64.b64decode(r.json()["envelope"]["payload"])
    assert hashlib.sha256(raw).hexdigest() == answer["envelope"]["payload_sha256"]
    decoded: dict[str, Any] = json.loads(raw)
    return decoded


def forward(api: Api, message_id: str, as_: str = "it.officer", **draft: Any) -> Any:
    return api.post(f"/v1/messages/{message_id}/forward", as_=as_, json={"draft": draft})


def refused_leaves(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'message:refused' ORDER BY id")
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def test_forward_inherits_the_original_and_references_it(api: Api, sync_engine: Engine) -> None:
    original = intel_from_bka(api, permitted_recipients=["nl.fiu"])
    r = forward(api, original, recipient="nl.fiu")
    assert r.status_code == 202, r.text
    sent = inner(api, r.json())
    assert sent["forwarded_from"] == original
    assert sent["sender"] == "it.central-authority"
    assert sent["recipient"] == "nl.fiu"
    # What the draft left out came from the original: type, basis, purpose, codes, body.
    assert sent["type"] == "intel.message"
    assert sent["purpose"] == LEGAL["purpose"]
    assert sent["handling"] == INTEL["handling"]
    assert sent["body"]["summary"].startswith("Vessel MARIA LUISA")
    # The forward is a message of its own, delivered like any other.
    relay(api.settings)
    inbox = api.get("/v1/inbox", as_="nl.officer").json()["items"]
    assert [i["message"]["id"] for i in inbox] == [r.json()["id"]]
    with sync_engine.connect() as conn:
        leaf = conn.execute(
            text(
                "SELECT leaf FROM audit_events WHERE kind = 'message:accepted' AND message_id = :m"
            ),
            {"m": r.json()["id"]},
        ).scalar_one()
        terms = conn.execute(
            text("SELECT root_message_id, provider_id FROM message_terms WHERE message_id = :m"),
            {"m": r.json()["id"]},
        ).one()
    assert json.loads(bytes(leaf))["forwarded_from"] == original
    assert tuple(terms) == (original, "de.bka")


def test_purpose_lock_denies_another_purpose_and_stores_only_the_refusal(
    api: Api, sync_engine: Engine
) -> None:
    original = intel_from_bka(api, permitted_recipients=["nl.fiu"])
    messages_before = count_rows(sync_engine, "messages")
    body = problem(
        forward(api, original, recipient="nl.fiu", purpose="tax audit"), 403, "policy-denied"
    )
    assert [r["rule"] for r in body["reasons"]] == ["P4.purpose-lock"]
    reason = body["reasons"][0]
    assert "18(19)" in reason["citation"]
    assert body["obligations"] == [  # what would lift it: the provider's consent
        {"kind": "require_consent", "value": "de.bka", "rule": "P4.purpose-lock"}
    ]
    assert count_rows(sync_engine, "messages") == messages_before
    leaf = refused_leaves(sync_engine)[-1]
    assert leaf["forwarded_from"] == original
    assert leaf["policy_rules"] == ["P4.purpose-lock"]
    assert leaf["policy_pack"] == body["policy_pack"]


def test_a_purpose_the_provider_permitted_may_be_used(api: Api) -> None:
    original = intel_from_bka(api, permitted_purposes=["tax audit"])
    assert forward(api, original, recipient="nl.fiu", purpose="tax audit").status_code == 202


def test_every_failing_rule_is_listed_with_its_citation(api: Api) -> None:
    # Outside the LED area, without a basis, for another purpose, to a recipient not named.
    original = intel_from_bka(api)
    body = problem(
        forward(api, original, recipient="us.central-authority", purpose="tax audit"),
        403,
        "policy-denied",
    )
    rules = [r["rule"] for r in body["reasons"]]
    assert set(rules) == {"P4.purpose-lock", "P16.basis", "P16.originator"}
    assert all(r["citation"] for r in body["reasons"])


def test_h2_material_goes_only_to_named_recipients(api: Api) -> None:
    original = intel_from_bka(api, handling={"code": "H2"}, permitted_recipients=["nl.fiu"])
    assert forward(api, original, recipient="nl.fiu").status_code == 202
    gdf = register(api, "it.guardia-di-finanza")
    body = problem(forward(api, original, recipient=gdf), 403, "policy-denied")
    assert [r["rule"] for r in body["reasons"]] == ["P12.h2-dissemination"]


def test_a_forward_cannot_lower_the_handling_code(api: Api) -> None:
    original = intel_from_bka(api, handling={"code": "H2"}, permitted_recipients=["nl.fiu"])
    body = problem(
        forward(api, original, recipient="nl.fiu", handling={"code": "H0"}), 403, "policy-denied"
    )
    assert [r["rule"] for r in body["reasons"]] == ["P12.keep-code"]


def test_restrictions_travel_with_every_forward(api: Api, sync_engine: Engine) -> None:
    h3 = {"code": "H3", "restriction": "do not contact the subject"}
    original = intel_from_bka(
        api,
        handling=h3,
        restrictions=["use only in proceedings RG 1234/2026"],
        permitted_recipients=["nl.fiu"],
    )
    r = forward(api, original, recipient="nl.fiu", restrictions=["no onward transfer"])
    assert r.status_code == 202, r.text
    sent = inner(api, r.json())
    assert sent["handling"] == h3
    assert sent["restrictions"] == [
        "use only in proceedings RG 1234/2026",
        "do not contact the subject",
        "no onward transfer",
    ]
    # The next holder forwards on: the first provider's terms still decide, and every
    # restriction is carried again.
    relay(api.settings)
    again = forward(api, r.json()["id"], as_="nl.officer", recipient="it.central-authority")
    assert again.status_code == 202, again.text
    assert set(inner(api, again.json(), "nl.officer")["restrictions"]) == set(sent["restrictions"])
    with sync_engine.connect() as conn:
        root, provider = conn.execute(
            text("SELECT root_message_id, provider_id FROM message_terms WHERE message_id = :m"),
            {"m": again.json()["id"]},
        ).one()
    assert (root, provider) == (original, "de.bka")
    # Leaving the LED area needs the first provider's authorisation, even two hops on.
    body = problem(
        forward(
            api,
            r.json()["id"],
            as_="nl.officer",
            recipient="us.central-authority",
            transfer_basis="appropriate_safeguards",
        ),
        403,
        "policy-denied",
    )
    assert [r["rule"] for r in body["reasons"]] == ["P16.originator"]
    assert body["obligations"][0]["value"] == "de.bka"


def test_fiu_material_to_a_recipient_not_named_needs_consent(api: Api) -> None:
    original = delivered(api, "nl.officer", {**FIU_DISCLOSURE, "permitted_recipients": ["de.bka"]})
    assert forward(api, original, recipient="de.bka").status_code == 202
    body = problem(
        forward(api, original, recipient="us.central-authority", transfer_basis="adequacy"),
        403,
        "policy-denied",
    )
    rules = {r["rule"] for r in body["reasons"]}
    assert "P18.named-recipients" in rules
    assert {"kind": "require_consent", "value": "nl.fiu", "rule": "P18.named-recipients"} in (
        body["obligations"]
    )


def test_self_signed_forward_must_carry_the_original_restrictions(api: Api) -> None:
    # nl.fiu sends de.bka restricted material; de.bka's system forwards it with its own key.
    original = delivered(
        api,
        "nl.officer",
        {
            **FIU_DISCLOSURE,
            "recipient": "de.bka",
            "restrictions": ["intelligence only, not evidence"],
            "permitted_recipients": ["it.central-authority"],
        },
    )
    key = api.world.keys["de.bka"]

    def signed(**over: Any) -> dict[str, Any]:
        p = payload(key, recipient="it.central-authority", type="fiu.disclosure", **over)
        p["purpose"] = FIU_DISCLOSURE["purpose"]
        return sign(key, p)

    url = f"/v1/messages/{original}/forward"
    body = problem(
        api.post(url, as_="de.system", json=signed(forwarded_from=original)),
        422,
        "schema-violation",
    )
    assert body["field"] == "payload.restrictions"
    other = api.post(
        url, as_="de.system", json=signed(forwarded_from="0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10")
    )
    assert problem(other, 422, "schema-violation")["field"] == "payload.forwarded_from"
    good = signed(forwarded_from=original, restrictions=["intelligence only, not evidence"])
    r = api.post(url, as_="de.system", json=good)
    assert r.status_code == 202, r.text
    assert r.json()["envelope"]["signatures"][0] == good["signatures"][0]
    # The same envelope again is the same answer.
    assert api.post(url, as_="de.system", json=good).status_code == 200


def test_a_forward_is_not_accepted_as_a_plain_submission(api: Api, sync_engine: Engine) -> None:
    original = intel_from_bka(api)
    draft = {**FIU_DISCLOSURE, "recipient": "nl.fiu", "forwarded_from": original}
    r = api.post("/v1/messages", as_="it.officer", json={"draft": draft})
    assert problem(r, 422, "schema-violation")["field"] == "payload.forwarded_from"


def test_only_the_holder_forwards_a_delivered_message(api: Api) -> None:
    key = api.world.keys["de.bka"]
    r = api.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
    pending = r.json()["id"]
    # Not yet in the recipient's inbox.
    problem(forward(api, pending, recipient="nl.fiu"), 409, "invalid-state")
    relay(api.settings)
    # The sender provides its own material as new messages; others do not see it at all.
    problem(forward(api, pending, as_="de.system", recipient="nl.fiu"), 403, "forbidden")
    problem(forward(api, pending, as_="nl.officer", recipient="de.bka"), 404, "not-found")
    problem(
        forward(api, pending, recipient="nl.fiu", forwarded_from=MID_OTHER), 422, "schema-violation"
    )


MID_OTHER = "0190f6f1-58e5-7d6e-8d4b-3a5c8f7e9a10"
