"""Events signed by the client itself: the draft to sign, the signed envelope accepted as the
event, the same envelope again answered alike, and every mismatch refused before it counts."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from broker.client import KeyFile, sign
from broker.core.ids import uuid7
from tests.conftest import Api, count_rows
from tests.integration.audit_helpers import kept_text
from tests.integration.test_case_helpers import call, open_case, register_partner
from tests.integration.test_fiu import fiu_request

IT = "it.fiu"


@pytest.fixture
def case_id(api: Api) -> str:
    register_partner(api, IT, "fiu", {"it.analyst": "officer"})
    case = open_case(
        api, "nl.officer", workflow="fiu.request", counterpart=IT, request=fiu_request()
    )
    cid: str = case["id"]
    return cid


def draft(api: Api, case_id: str, event: str, who: str = "nl.officer", **body: Any) -> Any:
    r = call(
        api,
        "POST",
        f"/v1/cases/{case_id}/events/draft",
        who,
        json={"event": event, "body": body},
        params={"justification": "signing the submission with our own key"},
    )
    assert r.status_code == 200, r.text
    return r.json()["payload"]


def test_a_draft_that_carries_the_request_is_a_logged_consultation(
    api: Api, case_id: str, sync_engine: Engine
) -> None:
    path = f"/v1/cases/{case_id}/events/draft"
    r = call(api, "POST", path, "nl.officer", json={"event": "submit"})
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("justification-required")
    assert "facts" not in r.text
    before = count_rows(sync_engine, "audit_events")
    draft(api, case_id, "submit")
    with sync_engine.connect() as conn:
        leaves = [
            orjson.loads(bytes(row[0]))
            for row in conn.execute(
                text("SELECT leaf FROM audit_events WHERE kind = 'content:consulted' ORDER BY id")
            )
        ]
    assert count_rows(sync_engine, "audit_events") == before + 1
    assert [(x["object"], x["case_id"], x["event"]) for x in leaves] == [
        ("case_request", case_id, "submit")
    ]
    assert kept_text(sync_engine, leaves[0], "justification") == (
        "signing the submission with our own key"
    )


def signed(key: KeyFile, payload: dict[str, Any], **over: Any) -> dict[str, Any]:
    full = {
        **payload,
        "id": str(uuid7()),
        "sender": key.participant,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        **over,
    }
    return sign(key, full)


def post(api: Api, case_id: str, envelope: dict[str, Any], who: str = "nl.officer") -> Any:
    return call(api, "POST", f"/v1/cases/{case_id}/events", who, json={"envelope": envelope})


def test_a_self_signed_event_is_the_event(api: Api, case_id: str) -> None:
    key = api.world.keys["nl.fiu"]
    payload = draft(api, case_id, "submit")
    assert payload["type"] == "fiu.request"
    assert payload["body"]["seq"] == 1
    assert payload["body"]["data"]["request"]["facts"]  # the node filled in the request
    envelope = signed(key, payload)
    r = post(api, case_id, envelope)
    assert r.status_code == 201, r.text
    fired = r.json()
    assert fired["case"]["state"] == "SUBMITTED"
    sent_id = orjson.loads(base64.b64decode(envelope["payload"]))["id"]
    assert fired["event"]["message_id"] == sent_id
    sigs = fired["envelope"]["signatures"]
    assert sigs[0] == envelope["signatures"][0]  # the FIU's own signature, then the node's
    assert len(sigs) == 2
    # The same envelope again: the same event, nothing new.
    again = post(api, case_id, envelope)
    assert again.status_code == 200, again.text
    assert again.json()["event"]["id"] == fired["event"]["id"]
    # A second envelope signed for the same step is stale now.
    stale = post(api, case_id, signed(key, payload))
    assert stale.status_code == 409, stale.text
    assert stale.json()["seq"] == 1


def test_a_self_signed_event_must_match_the_case(api: Api, case_id: str) -> None:
    key = api.world.keys["nl.fiu"]
    payload = draft(api, case_id, "submit")
    r = post(api, case_id, signed(key, payload, purpose="tax_audit"))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "payload.purpose"
    body = {**payload["body"], "data": {}}  # leaves out the request the node would send
    r = post(api, case_id, signed(key, payload, body=body))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "payload.body"
    r = post(api, case_id, signed(key, payload, recipient="de.bka"))
    assert r.status_code == 422, r.text
    # Signed with another participant's key, or not verifying: refused at the signature.
    r = post(api, case_id, signed(api.world.keys["de.bka"], payload))
    assert r.status_code in (400, 403), r.text
    envelope = signed(key, payload)
    envelope["payload"] = base64.b64encode(base64.b64decode(envelope["payload"]) + b" ").decode()
    r = post(api, case_id, envelope)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "urn:palermo:problem:bad-signature"
    listed = call(api, "GET", f"/v1/cases/{case_id}", "nl.officer").json()
    assert (listed["state"], listed["seq"]) == ("DRAFT", 0)


def test_a_draft_is_checked_like_the_event(api: Api, case_id: str) -> None:
    r = call(
        api, "POST", f"/v1/cases/{case_id}/events/draft", "it.analyst", json={"event": "submit"}
    )
    assert r.status_code == 404  # not shared yet: the partner does not see the case
    r = call(
        api, "POST", f"/v1/cases/{case_id}/events/draft", "nl.officer", json={"event": "close"}
    )
    assert r.status_code == 409, r.text
