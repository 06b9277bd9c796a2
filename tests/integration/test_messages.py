"""Routing through the HTTP API: submit, inbox, status, content, receipt; and every ingress
fault answered with problem+json and nothing stored (issue: DESIGN.md "Envelope")."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import orjson
import pytest
from sqlalchemy import Engine, text

from broker.client import KeyFile, sign
from broker.core import crypto
from broker.core.ids import uuid7
from broker.envelopes import dsse
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import INTEL, LEGAL, envelope, payload, relay

PROBLEM = "application/problem+json"


def assert_nothing_stored(engine: Engine) -> None:
    assert count_rows(engine, "messages") == 0
    assert count_rows(engine, "outbox") == 0
    assert count_rows(engine, "audit_events", "kind = 'message:accepted'") == 0


def assert_problem(response: object, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"urn:palermo:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


# --- the happy path ----------------------------------------------------------------------


def test_signed_message_travels_to_the_recipient_inbox(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    env = envelope(key)
    r = api.post("/v1/messages", as_="de.system", json=env)
    assert r.status_code == 202, r.text
    answer = r.json()
    message_id = answer["id"]
    assert answer["status"] == "accepted"
    assert r.headers["location"] == f"/v1/messages/{message_id}"
    # The node countersigned the same payload, after the sender's signature.
    sigs = answer["envelope"]["signatures"]
    assert sigs[0] == env["signatures"][0]
    node = api.get("/v1/node").json()
    signed = dsse.pae(dsse.PAYLOAD_TYPE, base64.b64decode(env["payload"]))
    crypto.verify(
        base64.b64decode(node["signing_public_key"]), signed, base64.b64decode(sigs[1]["sig"])
    )
    assert sigs[1]["keyid"] == node["signing_key_id"]

    # Not yet in the inbox: the relay delivers it.
    assert api.get("/v1/inbox", as_="it.officer").json()["items"] == []
    assert relay(api.settings) == 1
    page = api.get("/v1/inbox", as_="it.officer").json()
    assert [i["message"]["id"] for i in page["items"]] == [message_id]
    assert page["items"][0]["message"]["status"] == "delivered"
    assert page["next_cursor"] == page["items"][0]["cursor"]
    # The sender sees the status; the body is stored only encrypted.
    status = api.get(f"/v1/messages/{message_id}", as_="de.system").json()
    assert status["status"] == "delivered"
    assert status["delivered_at"] is not None
    with sync_engine.connect() as conn:
        stored = conn.execute(text("SELECT ciphertext FROM messages")).scalar_one()
    assert b"MARIA LUISA" not in bytes(stored)

    content = api.get(
        f"/v1/messages/{message_id}/content",
        as_="it.officer",
        params={"justification": "assessing the vessel alert for RG 1234/2026"},
    )
    assert content.status_code == 200, content.text
    assert content.json()["payload"]["body"]["summary"].startswith("Vessel MARIA LUISA")
    assert count_rows(sync_engine, "audit_events", "kind = 'content:consulted'") == 1

    r = api.post(f"/v1/messages/{message_id}/receipt", as_="it.officer", content=b"")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "receipted"
    receipt = r.json()["receipt"]
    receipt_payload = json.loads(base64.b64decode(receipt["payload"]))
    assert receipt_payload["in_reply_to"] == message_id
    assert receipt_payload["body"]["envelope_sha256"] == status["envelope_sha256"]
    assert api.get(f"/v1/messages/{message_id}", as_="de.system").json()["status"] == "receipted"
    kinds = {
        row[0] for row in sync_engine.connect().execute(text("SELECT kind FROM audit_events")).all()
    }
    assert {
        "message:accepted",
        "message:delivered",
        "content:consulted",
        "message:receipted",
    } <= kinds


def test_custodial_draft_is_signed_by_the_node_with_the_sender_key(api: Api) -> None:
    draft = {
        "type": "intel.message",
        "recipient": "us.central-authority",
        "body": {"summary": "courier seen at Fiumicino"},
        "transfer_basis": "appropriate_safeguards",
        **LEGAL,
        **INTEL,
    }
    r = api.post("/v1/messages", as_="it.officer", json={"draft": draft})
    assert r.status_code == 202, r.text
    assert "payload" not in r.json()["envelope"]  # the answer seals; the content route reads
    env = api.get(
        f"/v1/messages/{r.json()['id']}/content",
        as_="it.officer",
        params={"justification": "checking the draft the node signed"},
    ).json()["envelope"]
    inner = json.loads(base64.b64decode(env["payload"]))
    assert inner["sender"] == "it.central-authority"
    assert uuid.UUID(inner["id"]).version == 7
    participant = api.get("/v1/participants/it.central-authority", as_="it.officer").json()
    signing = {k["kid"]: k for k in participant["keys"] if k["purpose"] == "signing"}
    sender_sig = env["signatures"][0]
    assert signing[sender_sig["keyid"]]["custodial"] is True
    crypto.verify(
        base64.b64decode(signing[sender_sig["keyid"]]["public_key"]),
        dsse.pae(env["payloadType"], base64.b64decode(env["payload"])),
        base64.b64decode(sender_sig["sig"]),
    )


def test_same_envelope_twice_returns_the_first_answer_and_stores_nothing_new(
    api: Api, sync_engine: Engine
) -> None:
    env = envelope(api.world.keys["de.bka"])
    first = api.post("/v1/messages", as_="de.system", json=env)
    second = api.post("/v1/messages", as_="de.system", json=env)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == first.json()
    assert count_rows(sync_engine, "messages") == 1
    assert count_rows(sync_engine, "outbox") == 1
    assert count_rows(sync_engine, "audit_events", "kind = 'message:accepted'") == 1


def test_inbox_pages_with_a_cursor_oldest_first(api: Api) -> None:
    key = api.world.keys["de.bka"]
    ids = [
        api.post("/v1/messages", as_="de.system", json=envelope(key)).json()["id"] for _ in range(5)
    ]
    relay(api.settings)
    first = api.get("/v1/inbox", as_="it.officer", params={"limit": 2}).json()
    second = api.get(
        "/v1/inbox", as_="it.officer", params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    third = api.get(
        "/v1/inbox", as_="it.officer", params={"limit": 2, "cursor": second["next_cursor"]}
    ).json()
    seen = [i["message"]["id"] for page in (first, second, third) for i in page["items"]]
    assert seen == ids
    empty = api.get("/v1/inbox", as_="it.officer", params={"cursor": third["next_cursor"]})
    assert empty.json() == {"items": [], "next_cursor": third["next_cursor"]}
    # Another participant's inbox holds none of them.
    assert api.get("/v1/inbox", as_="nl.officer").json()["items"] == []


def test_no_participant_reads_another_participants_message(api: Api) -> None:
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    message_id = r.json()["id"]
    relay(api.settings)
    for path in ("", "/content?justification=curious+about+it+really"):
        assert api.get(f"/v1/messages/{message_id}{path}", as_="nl.officer").status_code == 404
        assert api.get(f"/v1/messages/{message_id}{path}", as_="us.officer").status_code == 404
    r = api.post(f"/v1/messages/{message_id}/receipt", as_="nl.officer", content=b"")
    assert r.status_code == 404
    # The sender may read status but not receipt on the recipient's behalf.
    r = api.post(f"/v1/messages/{message_id}/receipt", as_="de.system", content=b"")
    assert_problem(r, 403, "forbidden")


def test_content_needs_a_justification(api: Api, sync_engine: Engine) -> None:
    message_id = api.post(
        "/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"])
    ).json()["id"]
    too_short: tuple[dict[str, str], ...] = ({}, {"justification": "  "}, {"justification": "why"})
    control = ({"justification": "assessing the alert\x1b[2J"},)
    for params in (*too_short, *control):
        r = api.get(f"/v1/messages/{message_id}/content", as_="de.system", params=params)
        assert_problem(r, 422, "justification-required")
    assert count_rows(sync_engine, "audit_events", "kind = 'content:consulted'") == 0


def test_self_signed_receipt_is_verified_against_the_message(api: Api) -> None:
    nl_key = api.world.keys["nl.fiu"]
    de_key = api.world.keys["de.bka"]
    message_id = api.post(
        "/v1/messages", as_="de.system", json=envelope(de_key, recipient="nl.fiu")
    ).json()["id"]
    r = api.post(f"/v1/messages/{message_id}/receipt", as_="nl.officer", content=b"")
    assert_problem(r, 409, "invalid-state")  # not delivered yet
    relay(api.settings)
    digest = api.get(f"/v1/messages/{message_id}", as_="nl.officer").json()["envelope_sha256"]
    wrong = sign(
        nl_key,
        payload(
            nl_key,
            recipient="de.bka",
            type="receipt",
            in_reply_to=message_id,
            body={"envelope_sha256": "0" * 64},
        ),
    )
    r = api.post(f"/v1/messages/{message_id}/receipt", as_="nl.officer", json=wrong)
    assert_problem(r, 400, "bad-signature")
    good = sign(
        nl_key,
        payload(
            nl_key,
            recipient="de.bka",
            type="receipt",
            in_reply_to=message_id,
            body={"envelope_sha256": digest},
        ),
    )
    r = api.post(f"/v1/messages/{message_id}/receipt", as_="nl.officer", json=good)
    assert r.status_code == 200, r.text
    assert r.json()["receipt"] == good


# --- one test per ingress fault: a 4xx problem naming the fault, nothing stored -----------


def test_malformed_json(api: Api, sync_engine: Engine) -> None:
    r = api.post(
        "/v1/messages",
        as_="de.system",
        content=b'{"payloadType": ',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 400, "malformed-json")
    assert_nothing_stored(sync_engine)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.pop("signatures"), "signatures"),
        (lambda e: e.update(extra=1), "$"),
        (lambda e: e.update(payloadType="text/plain"), "payloadType"),
    ],
)
def test_envelope_schema_violation(
    api: Api, sync_engine: Engine, mutate: object, field: str
) -> None:
    env = envelope(api.world.keys["de.bka"])
    mutate(env)  # type: ignore[operator]
    body = assert_problem(
        api.post("/v1/messages", as_="de.system", json=env), 422, "schema-violation"
    )
    assert body["field"] == field
    assert_nothing_stored(sync_engine)


def test_payload_schema_violation_names_the_field(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    body = assert_problem(
        api.post("/v1/messages", as_="de.system", json=envelope(key, evaluation="Z9")),
        422,
        "schema-violation",
    )
    assert body["errors"][0]["field"] == "payload.evaluation"  # type: ignore[index]
    bad_id = envelope(key, id=str(uuid.uuid4()))
    body = assert_problem(
        api.post("/v1/messages", as_="de.system", json=bad_id), 422, "schema-violation"
    )
    assert "UUIDv7" in str(body["detail"])
    assert_nothing_stored(sync_engine)


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"legal_basis": "UNTOC art. 27\x00"}, "payload.legal_basis"),
        ({"purpose": "seizure\x1b[2J"}, "payload.purpose"),
        ({"data_categories": ["vessel\x00"]}, "payload.data_categories.0"),
        ({"restrictions": ["no onward use\x07"]}, "payload.restrictions.0"),
    ],
)
def test_control_characters_in_metadata_are_a_schema_violation(
    api: Api, sync_engine: Engine, over: dict[str, object], field: str
) -> None:
    """Metadata is stored in clear and written to audit leaves; PostgreSQL text cannot hold
    NUL at all, which was a 500. The body, stored encrypted, may hold anything JSON can."""
    key = api.world.keys["de.bka"]
    body = assert_problem(
        api.post("/v1/messages", as_="de.system", json=envelope(key, **over)),
        422,
        "schema-violation",
    )
    assert body["errors"][0]["field"] == field  # type: ignore[index]
    assert "control character" in str(body["detail"])
    assert_nothing_stored(sync_engine)
    ok = envelope(key, body={"text": "line\x00with NUL", "tab": "a\tb"})
    assert api.post("/v1/messages", as_="de.system", json=ok).status_code == 202


def test_bad_base64(api: Api, sync_engine: Engine) -> None:
    env = envelope(api.world.keys["de.bka"])
    env["payload"] = env["payload"][:-3] + "!!="
    body = assert_problem(api.post("/v1/messages", as_="de.system", json=env), 400, "bad-base64")
    assert body["field"] == "payload"
    assert_nothing_stored(sync_engine)


def test_bad_signature(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    env = envelope(key)
    tampered = json.loads(base64.b64decode(env["payload"]))
    tampered["recipient"] = "us.central-authority"
    env["payload"] = base64.b64encode(orjson.dumps(tampered)).decode()
    assert_problem(api.post("/v1/messages", as_="de.system", json=env), 400, "bad-signature")
    assert_nothing_stored(sync_engine)


@pytest.mark.parametrize("recipient", ["\x00", "it.central\x00authority", "IT.X", 7])
def test_an_unsigned_recipient_that_is_no_id_is_never_read_before_the_signature(
    api: Api, sync_engine: Engine, recipient: object
) -> None:
    """Ingress reads the recipient's facts with the signing key, from the payload before it
    is verified (architecture.md, "The statements of the ingress path"); a recipient that is
    not a participant id (PostgreSQL refuses NUL in text) must still get bad-signature."""
    env = envelope(api.world.keys["de.bka"])
    tampered = json.loads(base64.b64decode(env["payload"]))
    tampered["recipient"] = recipient
    env["payload"] = base64.b64encode(orjson.dumps(tampered)).decode()
    assert_problem(api.post("/v1/messages", as_="de.system", json=env), 400, "bad-signature")
    assert_nothing_stored(sync_engine)


def test_signature_by_unknown_key(api: Api, sync_engine: Engine) -> None:
    seed, _ = crypto.generate_signing_key()
    stranger = KeyFile("de.bka", crypto.Signer(seed).key_id, seed)
    assert_problem(
        api.post("/v1/messages", as_="de.system", json=envelope(stranger)), 400, "unknown-key"
    )
    assert_nothing_stored(sync_engine)


def test_signature_by_revoked_key(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    r = api.post(
        f"/v1/participants/de.bka/keys/{key.kid}/revoke",
        as_="it.admin",
        json={"reason": "laptop stolen"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None
    assert_problem(
        api.post("/v1/messages", as_="de.system", json=envelope(key)), 400, "revoked-key"
    )
    assert_nothing_stored(sync_engine)


def test_signature_by_expired_key(api: Api, sync_engine: Engine) -> None:
    seed, public = crypto.generate_signing_key()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    r = api.post(
        "/v1/participants/de.bka/keys",
        as_="it.admin",
        json={
            "purpose": "signing",
            "public_key": base64.b64encode(public).decode(),
            "not_before": start.isoformat(),
            "not_after": (start + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    old = KeyFile("de.bka", r.json()["kid"], seed)
    assert_problem(
        api.post("/v1/messages", as_="de.system", json=envelope(old)), 400, "expired-key"
    )
    assert_nothing_stored(sync_engine)


def test_signature_by_a_key_that_is_not_the_senders(api: Api, sync_engine: Engine) -> None:
    nl_key = api.world.keys["nl.fiu"]
    # Signed with nl.fiu's key but claims de.bka as sender.
    forged = sign(nl_key, payload(nl_key, sender="de.bka"))
    assert_problem(api.post("/v1/messages", as_="de.system", json=forged), 400, "key-not-senders")
    assert_nothing_stored(sync_engine)


def test_sender_not_the_callers_participant(api: Api, sync_engine: Engine) -> None:
    # A valid nl.fiu envelope submitted by de.bka's system.
    env = envelope(api.world.keys["nl.fiu"])
    assert_problem(api.post("/v1/messages", as_="de.system", json=env), 403, "sender-mismatch")
    assert_nothing_stored(sync_engine)


def test_unknown_recipient(api: Api, sync_engine: Engine) -> None:
    env = envelope(api.world.keys["de.bka"], recipient="xx.nobody")
    body = assert_problem(
        api.post("/v1/messages", as_="de.system", json=env), 422, "unknown-recipient"
    )
    assert body["field"] == "payload.recipient"
    assert_nothing_stored(sync_engine)


@pytest.mark.parametrize("offset", [dt.timedelta(minutes=-10), dt.timedelta(minutes=10)])
def test_created_at_outside_the_clock_window(
    api: Api, sync_engine: Engine, offset: dt.timedelta
) -> None:
    when = (dt.datetime.now(dt.UTC) + offset).isoformat()
    env = envelope(api.world.keys["de.bka"], created_at=when)
    assert_problem(api.post("/v1/messages", as_="de.system", json=env), 422, "clock-window")
    assert_nothing_stored(sync_engine)


def test_replayed_id_with_different_content(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    message_id = str(uuid7())
    first = api.post("/v1/messages", as_="de.system", json=envelope(key, id=message_id))
    assert first.status_code == 202
    other = envelope(key, id=message_id, body={"summary": "something else"})
    assert_problem(api.post("/v1/messages", as_="de.system", json=other), 409, "replay-conflict")
    assert count_rows(sync_engine, "messages") == 1
    assert count_rows(sync_engine, "audit_events", "kind = 'message:accepted'") == 1


def test_payload_over_the_size_limit(api: Api, sync_engine: Engine) -> None:
    big = envelope(
        api.world.keys["de.bka"], body={"blob": "x" * (api.settings.max_payload_bytes + 1)}
    )
    assert_problem(api.post("/v1/messages", as_="de.system", json=big), 413, "payload-too-large")
    assert_nothing_stored(sync_engine)


@pytest.mark.parametrize(
    ("over", "rule_hint"),
    [({"legal_basis": None}, "legal"), ({"purpose": None}, "purpose")],
)
def test_policy_denial_lists_the_reasons(
    api: Api, sync_engine: Engine, over: dict[str, object], rule_hint: str
) -> None:
    key = api.world.keys["de.bka"]
    p = payload(key)
    for k in over:
        p.pop(k)
    body = assert_problem(
        api.post("/v1/messages", as_="de.system", json=sign(key, p)), 403, "policy-denied"
    )
    reasons = body["reasons"]
    assert isinstance(reasons, list)
    assert reasons
    assert all({"rule", "text", "citation"} <= set(r) for r in reasons)
    assert rule_hint in json.dumps(reasons).lower()
    assert str(body["policy_pack"]).startswith("sha256:")
    assert_nothing_stored(sync_engine)
    # The refusal itself is audited, with the decision's rule ids and no content.
    with sync_engine.connect() as conn:
        leaf = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'message:refused'")
        ).scalar_one()
    refused = json.loads(bytes(leaf))
    assert refused["policy_rules"]
    assert refused["policy_pack"] == body["policy_pack"]
    assert "MARIA" not in bytes(leaf).decode()


def test_message_to_a_suspended_participant_is_denied(api: Api, sync_engine: Engine) -> None:
    env = envelope(api.world.keys["de.bka"], recipient="fr.suspended")
    assert_problem(api.post("/v1/messages", as_="de.system", json=env), 403, "policy-denied")
    assert_nothing_stored(sync_engine)


def test_a_draft_over_the_size_limit_is_refused(api: Api, sync_engine: Engine) -> None:
    draft = {
        "type": "intel.message",
        "recipient": "de.bka",
        "body": {"blob": "x" * api.settings.max_payload_bytes},
        **LEGAL,
        **INTEL,
    }
    r = api.post("/v1/messages", as_="it.officer", json={"draft": draft})
    assert_problem(r, 413, "payload-too-large")
    assert_nothing_stored(sync_engine)


def test_the_recipient_reads_content_only_once_delivered(api: Api) -> None:
    message_id = api.post(
        "/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"])
    ).json()["id"]
    params = {"justification": "assessing the vessel alert"}
    r = api.get(f"/v1/messages/{message_id}/content", as_="it.officer", params=params)
    assert_problem(r, 409, "invalid-state")
    relay(api.settings)
    r = api.get(f"/v1/messages/{message_id}/content", as_="it.officer", params=params)
    assert r.status_code == 200
