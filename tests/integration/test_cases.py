"""Cases through the HTTP API: opening, firing signed events, routing to the other side,
visibility, listing with filters, timeline, allowed next events and the diagram."""

from __future__ import annotations

import orjson
from sqlalchemy import Engine, text

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    REQUESTED,
    REQUESTING,
    VETTER,
    event_payload,
    fire,
    mla_request,
    open_case,
    to_assessment,
    to_transmitted,
)


def test_a_draft_is_the_requesting_sides_alone(api: Api, sync_engine: Engine) -> None:
    case = open_case(api)
    assert case["state"] == "DRAFT"
    assert case["requesting"] == REQUESTING
    assert case["counterpart"] == REQUESTED
    assert case["side"] == "requesting"
    assert case["timeline"] == []
    assert [e["event"] for e in case["allowed_events"]] == [
        "submit_for_vetting",
        "withdraw",
        "record_assurance",
    ]
    assert "persons_concerned" in case["fields"]
    # The request's text is stored only encrypted.
    with sync_engine.connect() as conn:
        stored = conn.execute(text("SELECT request_ciphertext FROM cases")).scalar_one()
    assert b"New York" not in bytes(stored)
    assert count_rows(sync_engine, "audit_events", "kind = 'case:opened'") == 1
    # The requested side does not see a draft, not even that it exists.
    assert api.get(f"/v1/cases/{case['id']}", as_=HANDLER).status_code == 404
    assert api.get("/v1/cases", as_=HANDLER).json()["items"] == []


def test_vetting_and_transmission_route_signed_events(api: Api, sync_engine: Engine) -> None:
    case = open_case(api)
    vetted = fire(api, case["id"], "submit_for_vetting", DRAFTER)
    assert vetted["case"]["state"] == "CA_VETTING"
    event = vetted["event"]
    assert event["seq"] == 1
    assert event["actor_participant"] == REQUESTING
    # Before transmission the event stays inside the requesting participant.
    env = vetted["envelope"]
    assert "payload" not in env  # the answer carries digest and signatures, not the request
    payload = event_payload(api, vetted, DRAFTER)
    assert payload["type"] == "mla.event"
    assert payload["recipient"] == REQUESTING
    assert payload["body"]["event"] == "submit_for_vetting"
    assert payload["body"]["data"]["request"]["language"] == "en"
    assert len(env["signatures"]) == 2  # the participant's (custodial) and the node's

    sent = fire(api, case["id"], "transmit", VETTER)
    assert sent["case"]["state"] == "TRANSMITTED"
    payload = event_payload(api, sent, VETTER)
    assert payload["recipient"] == REQUESTED
    assert payload["in_reply_to"] == event["message_id"]
    assert payload["transfer_basis"] == "appropriate_safeguards"
    # One audit leaf per event, kind case:transition, holding the event and both states.
    leaves = _leaves(sync_engine, "case:transition")
    assert [(x["case_event"], x["from_state"], x["to_state"]) for x in leaves] == [
        ("submit_for_vetting", "DRAFT", "CA_VETTING"),
        ("transmit", "CA_VETTING", "TRANSMITTED"),
    ]
    assert all(x["case_id"] == case["id"] and x["policy_pack"] for x in leaves)
    assert count_rows(sync_engine, "audit_events", "kind = 'message:accepted'") == 0

    # The relay delivers the transmitted request to the requested central authority.
    relay(api.settings)
    inbox = api.get("/v1/inbox", as_=HANDLER).json()["items"]
    assert [i["message"]["case_id"] for i in inbox] == [case["id"]]
    seen = api.get(f"/v1/cases/{case['id']}", as_=HANDLER).json()
    assert seen["side"] == "requested"
    assert [e["event"] for e in seen["timeline"]] == ["transmit"]
    assert [e["event"] for e in seen["allowed_events"]] == ["acknowledge"]
    mine = api.get(f"/v1/cases/{case['id']}", as_=DRAFTER).json()
    assert [e["event"] for e in mine["timeline"]] == ["submit_for_vetting", "transmit"]


def test_the_other_side_answers_and_both_hold_the_same_history(api: Api) -> None:
    case = to_assessment(api)
    fire(api, case["id"], "request_information", HANDLER, {"question": "Account numbers?"})
    fire(api, case["id"], "provide_information", DRAFTER, {"information": "IBAN ... and ..."})
    theirs = api.get(f"/v1/cases/{case['id']}", as_=HANDLER).json()["timeline"]
    ours = api.get(f"/v1/cases/{case['id']}", as_=DRAFTER).json()["timeline"]
    assert ours[1:] == theirs  # ours also holds the submission for vetting
    assert [e["event"] for e in theirs] == [
        "transmit",
        "acknowledge",
        "start_assessment",
        "request_information",
        "provide_information",
    ]


def test_listing_filters(api: Api) -> None:
    urgent = to_transmitted(api, urgent=True)
    plain = open_case(api)
    ids = [c["id"] for c in api.get("/v1/cases", as_=DRAFTER).json()["items"]]
    assert ids == [plain["id"], urgent["id"]]
    q = api.get("/v1/cases", as_=DRAFTER, params={"urgent": "true"}).json()["items"]
    assert [c["id"] for c in q] == [urgent["id"]]
    q = api.get("/v1/cases", as_=DRAFTER, params={"state": "DRAFT"}).json()["items"]
    assert [c["id"] for c in q] == [plain["id"]]
    q = api.get("/v1/cases", as_=DRAFTER, params={"counterpart": "de.bka"}).json()["items"]
    assert q == []
    q = api.get("/v1/cases", as_=HANDLER, params={"counterpart": REQUESTING}).json()["items"]
    assert [c["id"] for c in q] == [urgent["id"]]


def test_the_diagram_and_workflows_come_from_the_tables(api: Api) -> None:
    case = to_transmitted(api)
    d = api.get(f"/v1/cases/{case['id']}/diagram", as_=DRAFTER).json()
    assert d["state"] == "TRANSMITTED"
    assert d["mermaid"].startswith("stateDiagram-v2\n")
    assert "CA_VETTING --> TRANSMITTED : transmit (requesting)" in d["mermaid"]
    assert "class TRANSMITTED current" in d["mermaid"]
    workflows = api.get("/v1/workflows", as_="oversight").json()["items"]
    assert [w["name"] for w in workflows] == [
        "mla.request",
        "fiu.request",
        "fiu.disclosure",
        "consent",
        "feedback",
        "extradition.request",
        "jit.team",
        "intel.request",
    ]
    mla = api.get("/v1/workflows/mla.request", as_=DRAFTER).json()
    transmit = next(t for t in mla["transitions"] if t["event"] == "transmit")
    assert transmit["roles"] == ["supervisor"]
    assert transmit["guards"][0]["id"] == "four_eyes"


def test_the_request_is_read_with_a_justification(api: Api, sync_engine: Engine) -> None:
    case = to_transmitted(api)
    r = api.get(f"/v1/cases/{case['id']}/request", as_=HANDLER)
    assert r.status_code == 422
    r = api.get(
        f"/v1/cases/{case['id']}/request",
        as_=HANDLER,
        params={"justification": "assessing the request"},
    )
    assert r.status_code == 200, r.text
    request = r.json()["request"]
    assert request | mla_request() == request
    assert request["urgent"] is False
    assert count_rows(sync_engine, "audit_events", "kind = 'content:consulted'") == 1


def _leaves(engine: Engine, kind: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        ).all()
    return [orjson.loads(bytes(r.leaf)) for r in rows]
