"""Consent for onward use through the HTTP API (issue 4, item 5; FIU.md consent flow):
requests and answers are signed ``fiu.consent`` messages routed between the parties; a
granted consent widens exactly the recipient and purpose it names; a refusal needs reasons
and never rests on fiscal or secrecy grounds."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import Engine, text

from tests.conftest import Api, count_rows
from tests.integration.audit_helpers import kept_text
from tests.integration.messaging_helpers import relay
from tests.integration.test_forward import FIU_DISCLOSURE, delivered, forward, problem, register

PURPOSE = FIU_DISCLOSURE["purpose"]


def disclosure(api: Api) -> str:
    """nl.fiu discloses to it.central-authority, naming no other recipient; delivered."""
    return delivered(api, "nl.officer", FIU_DISCLOSURE)


def ask(api: Api, message_id: str, **over: Any) -> Any:
    create = {"recipient": "de.bka", "purpose": PURPOSE, "reasons": "joint investigation", **over}
    return api.post(f"/v1/messages/{message_id}/consent-requests", as_="it.officer", json=create)


def leaves(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def content(api: Api, message_id: str, as_: str) -> dict[str, Any]:
    r = api.get(
        f"/v1/messages/{message_id}/content",
        as_=as_,
        params={"justification": "answering a consent request"},
    )
    assert r.status_code == 200, r.text
    payload: dict[str, Any] = r.json()["payload"]
    return payload


def test_consent_granted_widens_exactly_its_recipient_and_purpose(
    api: Api, sync_engine: Engine
) -> None:
    original = disclosure(api)
    # Without consent, the named-recipient rule refuses and says whose consent lifts it.
    body = problem(forward(api, original, recipient="de.bka"), 403, "policy-denied")
    assert [r["rule"] for r in body["reasons"]] == ["P18.named-recipients"]

    r = ask(api, original)
    assert r.status_code == 201, r.text
    consent = r.json()
    assert consent["status"] == "requested"
    assert (consent["provider"], consent["requester"]) == ("nl.fiu", "it.central-authority")
    assert (consent["recipient"], consent["purpose"]) == ("de.bka", PURPOSE)
    assert consent["root_message_id"] == original
    # The request is a signed fiu.consent message routed to the provider.
    relay(api.settings)
    inbox = api.get("/v1/inbox", as_="nl.officer").json()["items"]
    request = [i["message"] for i in inbox if i["message"]["id"] == consent["request_message_id"]]
    assert request
    assert request[0]["type"] == "fiu.consent"
    assert request[0]["sender"] == "it.central-authority"
    asked = content(api, consent["request_message_id"], "nl.officer")["body"]
    assert asked["consent"] == "request"
    assert (asked["consent_id"], asked["recipient"]) == (consent["id"], "de.bka")
    # Both parties see it; the provider answers.
    mine = api.get("/v1/consents", as_="nl.officer", params={"status": "requested"}).json()
    assert [c["id"] for c in mine["items"]] == [consent["id"]]
    assert api.get(f"/v1/consents/{consent['id']}", as_="it.officer").status_code == 200

    granted = api.post(f"/v1/consents/{consent['id']}/grant", as_="nl.officer", json={})
    assert granted.status_code == 200, granted.text
    answer = granted.json()
    assert answer["status"] == "granted"
    assert answer["answer_message_id"]
    relay(api.settings)
    said = content(api, answer["answer_message_id"], "it.officer")
    assert said["type"] == "fiu.consent"
    assert said["in_reply_to"] == consent["request_message_id"]
    assert said["body"]["consent"] == "granted"

    # Now the named recipient, for the named purpose, is permitted ...
    assert forward(api, original, recipient="de.bka").status_code == 202
    # ... and nothing else: not another purpose, not another recipient.
    other_purpose = forward(api, original, recipient="de.bka", purpose="tax audit")
    assert {r["rule"] for r in other_purpose.json()["reasons"]} == {
        "P4.purpose-lock",
        "P18.named-recipients",
    }
    gdf = register(api, "it.guardia-di-finanza")
    other_recipient = forward(api, original, recipient=gdf)
    assert [r["rule"] for r in other_recipient.json()["reasons"]] == ["P18.named-recipients"]

    requested = leaves(sync_engine, "consent:requested")
    granted_leaves = leaves(sync_engine, "consent:granted")
    assert [leaf["consent_id"] for leaf in requested] == [consent["id"]]
    assert granted_leaves[0]["answer_message_id"] == answer["answer_message_id"]
    assert granted_leaves[0]["recipient"] == "de.bka"
    assert "reasons" not in granted_leaves[0]  # free text stays out of the log
    # The purpose may name a person: the leaves commit to it, the text is kept beside them.
    for leaf in (requested[0], granted_leaves[0]):
        assert kept_text(sync_engine, leaf, "purpose") == consent["purpose"]


def test_a_consent_counts_only_for_the_material_it_was_given_for(api: Api) -> None:
    first, second = disclosure(api), disclosure(api)
    consent = ask(api, first).json()
    api.post(f"/v1/consents/{consent['id']}/grant", as_="nl.officer", json={})
    assert forward(api, first, recipient="de.bka").status_code == 202
    assert forward(api, second, recipient="de.bka").status_code == 403


def test_a_refusal_needs_reasons_and_no_secrecy_ground(api: Api, sync_engine: Engine) -> None:
    original = disclosure(api)
    consent = ask(api, original).json()
    url = f"/v1/consents/{consent['id']}/refuse"
    body = problem(api.post(url, as_="nl.officer", json={}), 403, "policy-denied")
    assert [r["rule"] for r in body["reasons"]] == ["FIU.consent-refusal-reasons"]
    secrecy = {"reasons": "bank secrecy applies", "grounds": ["secrecy"]}
    body = problem(api.post(url, as_="nl.officer", json=secrecy), 403, "policy-denied")
    assert [r["rule"] for r in body["reasons"]] == ["FIU.refusal-grounds"]
    # Neither denial answered the consent.
    assert api.get(f"/v1/consents/{consent['id']}", as_="nl.officer").json()["status"] == (
        "requested"
    )
    assert count_rows(sync_engine, "audit_events", "kind = 'consent:refused'") == 0

    reasons = {"reasons": "the analysis is still open", "grounds": ["ongoing_investigation"]}
    r = api.post(url, as_="nl.officer", json=reasons)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refused"
    assert r.json()["reasons"] == "the analysis is still open"
    assert leaves(sync_engine, "consent:refused")[0]["grounds"] == ["ongoing_investigation"]
    # A refused consent lifts nothing, and it is answered once.
    assert forward(api, original, recipient="de.bka").status_code == 403
    grant = api.post(f"/v1/consents/{consent['id']}/grant", as_="nl.officer", json={})
    problem(grant, 409, "invalid-state")


def test_unknown_grounds_are_a_schema_error(api: Api) -> None:
    consent = ask(api, disclosure(api)).json()
    r = api.post(
        f"/v1/consents/{consent['id']}/refuse",
        as_="nl.officer",
        json={"reasons": "no", "grounds": ["because"]},
    )
    problem(r, 422, "schema-violation")


def test_who_asks_and_who_answers(api: Api) -> None:
    original = disclosure(api)
    # The provider does not ask for consent to use its own material.
    mine = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="nl.officer",
        json={"recipient": "de.bka", "purpose": PURPOSE},
    )
    problem(mine, 403, "forbidden")
    consent = ask(api, original).json()
    # The same request twice is one request.
    problem(ask(api, original), 409, "conflict")
    # The requester does not answer its own request; a third party does not see it.
    grant = f"/v1/consents/{consent['id']}/grant"
    problem(api.post(grant, as_="it.officer", json={}), 403, "forbidden")
    problem(api.post(grant, as_="de.system", json={}), 404, "not-found")
    problem(api.get(f"/v1/consents/{consent['id']}", as_="de.system"), 404, "not-found")
    assert api.get("/v1/consents", as_="de.system").json()["items"] == []


def test_a_consent_request_is_itself_decided_by_policy(api: Api, sync_engine: Engine) -> None:
    # us.central-authority holds material from nl.fiu; nl.fiu's answer leaves the LED area
    # and so needs a transfer basis like any message.
    to_us = {
        **FIU_DISCLOSURE,
        "recipient": "us.central-authority",
        "transfer_basis": "appropriate_safeguards",
    }
    original = delivered(api, "nl.officer", to_us)
    r = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="us.officer",
        json={"recipient": "us.central-authority", "purpose": "prosecution"},
    )
    assert r.status_code == 201, r.text
    grant = f"/v1/consents/{r.json()['id']}/grant"
    body = problem(api.post(grant, as_="nl.officer", json={}), 403, "policy-denied")
    assert [x["rule"] for x in body["reasons"]] == ["P16.basis"]
    ok = api.post(grant, as_="nl.officer", json={"transfer_basis": "appropriate_safeguards"})
    assert ok.status_code == 200, ok.text
    answer = api.get(f"/v1/messages/{ok.json()['answer_message_id']}", as_="nl.officer").json()
    assert answer["type"] == "fiu.consent"
    envelope = api.get(
        f"/v1/messages/{ok.json()['answer_message_id']}/content",
        as_="nl.officer",
        params={"justification": "checking the consent answer"},
    ).json()["envelope"]
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload["transfer_basis"] == "appropriate_safeguards"
    assert len(envelope["signatures"]) == 2  # the provider's, then the node's
