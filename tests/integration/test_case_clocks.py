"""Clocks: deadlines with reasons, configured reference clocks, reminders and escalations
raised by the node's timers as signed system events, postponement reviews, escalation of
unconfirmed urgent requests, acknowledgement on a signed receipt, retention expiry, and
progress queries answered from the case state. Time is a FakeClock, never slept on."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    FakeClock,
    fire,
    get_case,
    mla_request,
    open_case,
    set_clocks,
    tick,
    to_assessment,
    to_execution,
    to_transmitted,
    use_clock,
)

CLOCKS: dict[str, Any] = {
    "treaty": {
        "title": "IT-US treaty practice",
        "citation": "it-us-mlat-1982 (test configuration)",
        "workflows": ["mla.request"],
        "legal_bases": ["it-us-mlat-1982"],
        "milestones": [
            {
                "name": "acknowledge",
                "title": "acknowledge receipt",
                "starts_on": ["transmit"],
                "stops_on": ["acknowledge"],
                "days": 7,
                "remind_before_hours": 48,
            },
            {
                "name": "decide",
                "title": "decide",
                "starts_on": ["acknowledge"],
                "stops_on": ["accept", "accept_conditions", "refuse"],
                "days": 30,
                "remind_before_hours": 120,
            },
        ],
    }
}


def notices(case: dict[str, Any]) -> list[str]:
    return [e["event"] for e in case["timeline"] if e["side"] == "system"]


def deadline(case: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in case["deadlines"] if d["name"] == name)
    return found


def test_a_configured_clock_reminds_then_escalates(api: Api, sync_engine: Engine) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    case = to_transmitted(api)
    start = clock.now
    ack = deadline(get_case(api, case["id"]), "acknowledge")
    assert ack["status"] == "running"
    assert ack["source"] == "treaty"
    assert ack["reason"] == "IT-US treaty practice: acknowledge receipt"
    assert dt.datetime.fromisoformat(ack["due_at"]) == start + dt.timedelta(days=7)

    assert tick(api, clock.advance(days=4)) == 0
    assert tick(api, clock.advance(days=1, hours=1)) == 1  # two days before: a reminder
    assert tick(api, clock.now) == 0  # once only
    assert notices(get_case(api, case["id"])) == ["reminder"]
    listed = api.get("/v1/cases", as_=DRAFTER, params={"overdue": "true"}).json()["items"]
    assert listed == []

    assert tick(api, clock.advance(days=3)) == 1  # past due: an escalation
    seen = get_case(api, case["id"], HANDLER)
    assert notices(seen) == ["reminder", "escalation"]
    assert seen["overdue"] is True
    assert deadline(seen, "acknowledge")["status"] == "overdue"
    listed = api.get("/v1/cases", as_=HANDLER, params={"overdue": "true"}).json()["items"]
    assert [c["id"] for c in listed] == [case["id"]]
    # Each notice is a system event signed by the node, with its one audit leaf.
    escalation = seen["timeline"][-1]
    assert escalation["node_signature"]
    assert escalation["details"]["deadline"] == "acknowledge"
    assert count_rows(sync_engine, "audit_events", "kind = 'case:notice'") == 2

    fire(api, case["id"], "acknowledge", HANDLER)
    seen = get_case(api, case["id"], HANDLER)
    assert deadline(seen, "acknowledge")["status"] == "missed"
    assert deadline(seen, "decide")["status"] == "running"
    assert seen["overdue"] is False


def test_the_clock_pauses_while_information_is_awaited(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    case = to_assessment(api)
    start = clock.now
    clock.advance(days=3)
    fire(api, case["id"], "request_information", HANDLER, {"question": "Which accounts?"})
    clock.advance(days=10)
    paused = get_case(api, case["id"])
    assert deadline(paused, "decide")["status"] == "paused"
    assert tick(api, clock.advance(days=30)) == 0  # a paused clock raises nothing
    fire(api, case["id"], "provide_information", DRAFTER, {"information": "Accounts 1 and 2"})
    decide = deadline(get_case(api, case["id"]), "decide")
    assert decide["paused_seconds"] == 40 * 86400
    assert dt.datetime.fromisoformat(decide["due_at"]) == start + dt.timedelta(days=70)


def test_the_requesting_sides_deadline_carries_its_reason(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    due = clock.now + dt.timedelta(days=20)
    reason = "the trial opens on 23 March"
    case = open_case(api, request=mla_request(deadline=due.isoformat(), deadline_reason=reason))
    assert get_case(api, case["id"])["deadlines"] == []  # no clock runs on a draft
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    fire(api, case["id"], "transmit", "it.supervisor")
    requested = deadline(get_case(api, case["id"], HANDLER), "requested")
    assert requested["reason"] == reason
    assert requested["citation"] == "UNTOC art. 18(24)"
    assert dt.datetime.fromisoformat(requested["due_at"]) == due
    assert tick(api, clock.advance(days=17, hours=1)) == 1  # 72 h before
    assert tick(api, clock.advance(days=3)) == 1
    assert notices(get_case(api, case["id"])) == ["reminder", "escalation"]


def test_a_postponement_is_reviewed_on_its_date(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    case = to_assessment(api)
    body = {"reason": "postponement", "message": "Execution would alert the suspects."}
    fire(api, case["id"], "open_consultation", HANDLER, body)
    fire(api, case["id"], "back_to_assessment", HANDLER)
    fire(api, case["id"], "accept", HANDLER)
    fire(api, case["id"], "assign_execution", HANDLER, {"executing_authority": "SDNY"})
    review = clock.now + dt.timedelta(days=14)
    fire(
        api,
        case["id"],
        "postpone",
        HANDLER,
        {
            "grounds": ["ongoing_investigation"],
            "reasons": "Covert.",
            "review_date": review.isoformat(),
        },
    )
    assert tick(api, clock.advance(days=13)) == 0
    assert tick(api, clock.advance(days=1)) == 1
    seen = get_case(api, case["id"], HANDLER)
    assert notices(seen) == ["postponement_review"]
    assert seen["state"] == "POSTPONED"  # a notice never changes the state
    assert tick(api, clock.advance(days=1)) == 0


def test_an_oral_urgent_request_is_escalated_until_confirmed_in_writing(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    case = to_transmitted(api, urgent=True, initiated_by="oral")
    assert tick(api, clock.advance(hours=23)) == 0
    assert tick(api, clock.advance(hours=2)) == 1
    assert tick(api, clock.advance(hours=24)) == 1
    seen = get_case(api, case["id"])
    escalations = [e for e in seen["timeline"] if e["event"] == "confirmation_escalation"]
    assert [e["details"]["escalation"] for e in escalations] == [1, 2]
    fire(api, case["id"], "written_confirmation", DRAFTER, {"reference": "letter 4/2026"})
    assert tick(api, clock.advance(days=10)) == 0


def test_a_signed_receipt_acknowledges_the_request(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    case = to_transmitted(api)
    transmit = get_case(api, case["id"])["timeline"][-1]
    relay(api.settings)
    assert tick(api, clock.now) == 0
    r = api.post(f"/v1/messages/{transmit['message_id']}/receipt", as_=HANDLER)
    assert r.status_code == 200, r.text
    assert tick(api, clock.advance(minutes=5)) == 1
    seen = get_case(api, case["id"], HANDLER)
    assert seen["state"] == "RECEIVED"
    ack = seen["timeline"][-1]
    assert (ack["event"], ack["side"]) == ("acknowledge", "system")
    assert ack["details"]["on_receipt"] == transmit["message_id"]


def test_retention_expiry_erases_the_content_and_keeps_the_history(
    api: Api, sync_engine: Engine
) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS, retention=dt.timedelta(days=365))
    case = to_execution(api)
    fire(api, case["id"], "withdraw", DRAFTER, {"reason": "Proceedings discontinued."})
    assert tick(api, clock.advance(days=274)) == 0
    # 90 days before the end (PALERMO_RETENTION_REVIEW_DAYS) the parties are reminded that a
    # reasoned review may extend it (P17); nobody does.
    assert tick(api, clock.advance(days=1)) == 1
    assert get_case(api, case["id"])["timeline"][-1]["event"] == "retention_review"
    assert tick(api, clock.advance(days=89)) == 0
    assert tick(api, clock.advance(days=2)) == 1
    seen = get_case(api, case["id"])
    assert seen["state"] == "ERASED"
    assert seen["timeline"][-1]["event"] == "expire_retention"
    r = api.get(
        f"/v1/cases/{case['id']}/request", as_=DRAFTER, params={"justification": "audit check"}
    )
    # P17: the erased request answers 410 Gone, naming the erasure date.
    assert r.status_code == 410
    assert r.json()["type"] == "urn:palermo:problem:content-erased"
    assert r.json()["erased_at"] == seen["erased_at"]
    assert count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"]) == len(
        seen["timeline"]
    )


def test_a_progress_query_is_answered_from_the_case_state(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    case = to_assessment(api)
    clock.advance(days=2)
    asked = fire(api, case["id"], "progress_query", DRAFTER)
    reply = asked["reply"]
    assert reply["event"] == "progress_reply"
    assert reply["side"] == "system"
    assert reply["details"]["state"] == "ASSESSMENT"
    assert [d["name"] for d in reply["details"]["deadlines"]] == ["acknowledge", "decide"]
    assert asked["case"]["state"] == "ASSESSMENT"
