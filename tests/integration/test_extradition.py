"""The extradition workflow (UNTOC art. 16; rule P20) through the HTTP API: the request, the
provisional arrest of an urgent one (16(9)), consultation before refusal (16(16)), no refusal
on fiscal matters alone (16(15)), and the refusal of a national (16(10)) opening the domestic
prosecution item that the case tracks until its outcome is reported. Every break is a clear
4xx naming the rule or guard and its citation, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import (
    DECIDER,
    DRAFTER,
    HANDLER,
    REQUESTED,
    VETTER,
    FakeClock,
    call,
    case_of,
    fire,
    get_case,
    problem,
    set_clocks,
    tick,
    use_clock,
)

WORKFLOW = "extradition.request"


def extradition_request(**over: Any) -> dict[str, Any]:
    """Italy asks the United States to surrender a person sought for trial (the US is outside
    the LED area: a transfer basis is declared)."""
    request: dict[str, Any] = {
        "requesting_authority": "Procura della Repubblica di Milano",
        "persons_concerned": [
            {"ref": "p1", "category": "suspect", "identity": "M. R.", "nationality": "US"}
        ],
        "offence": "participation in an organized criminal group (UNTOC art. 5)",
        "max_penalty_years": 10,
        "facts_summary": "Laundering of proceeds through shell companies in 2024-2025.",
        "warrant_reference": "OCC 1234/2026 GIP Milano",
        "purpose": "prosecution",
        "legal_basis": "untoc",
        "language": "en",
        "channel": "central_authority",
        "transfer_basis": "appropriate_safeguards",
    }
    request.update(over)
    return request


def rules(p: dict[str, Any]) -> list[str]:
    assert p["type"] == "urn:palermo:problem:policy-denied", p
    assert all(r["citation"] for r in p["reasons"])
    return [r["rule"] for r in p["reasons"]]


def open_extradition(api: Api, **request: Any) -> dict[str, Any]:
    r = call(
        api,
        "POST",
        "/v1/cases",
        DRAFTER,
        json={
            "workflow": WORKFLOW,
            "counterpart": REQUESTED,
            "request": extradition_request(**request),
        },
    )
    assert r.status_code == 201, r.text
    case: dict[str, Any] = r.json()
    assert (case["workflow"], case["state"]) == (WORKFLOW, "DRAFT")
    return case


def to_assessment(api: Api, **request: Any) -> str:
    case_id: str = open_extradition(api, **request)["id"]
    fire(api, case_id, "submit", VETTER)
    fire(api, case_id, "acknowledge", HANDLER)
    fire(api, case_id, "start_assessment", HANDLER)
    return case_id


def consult(api: Api, case_id: str) -> None:
    body = {"reason": "intended_refusal", "message": "We intend to refuse: your opinion?"}
    fire(api, case_id, "open_consultation", HANDLER, body)


def refused_without_change(
    api: Api, engine: Engine, case_id: str, event: str, body: dict[str, Any], status: int
) -> dict[str, Any]:
    before = get_case(api, case_id)
    events = count_rows(engine, "case_events", "case_id = :c", c=case_id)
    p = problem(api, case_id, event, DECIDER, body, status=status)
    after = get_case(api, case_id)
    assert (after["state"], after["seq"]) == (before["state"], before["seq"])
    assert count_rows(engine, "case_events", "case_id = :c", c=case_id) == events
    return p


def test_the_request_reaches_the_requested_state_and_the_person_is_surrendered(
    api: Api,
) -> None:
    case_id = open_extradition(api)["id"]
    # Before transmission the request is Italy's own: the United States does not see it.
    assert call(api, "GET", f"/v1/cases/{case_id}", HANDLER).status_code == 404
    sent = fire(api, case_id, "submit", VETTER)
    assert sent["case"]["state"] == "TRANSMITTED"
    assert "baseline.permit" in sent["event"]["policy_rules"]
    assert get_case(api, case_id, HANDLER)["state"] == "TRANSMITTED"
    fire(api, case_id, "acknowledge", HANDLER)
    fire(api, case_id, "start_assessment", HANDLER)
    fire(api, case_id, "accept", DECIDER)
    done = case_of(fire(api, case_id, "surrender", HANDLER, {"note": "At JFK, 10:00."}))
    assert done["state"] == "SURRENDERED"
    assert done["allowed_events"] == []


def test_who_may_fire_what(api: Api) -> None:
    case_id = open_extradition(api)["id"]
    # Only a supervisor of the requesting central authority sends it.
    p = problem(api, case_id, "submit", DRAFTER, status=403)
    assert "supervisor" in p["detail"]
    fire(api, case_id, "submit", VETTER)
    # The requesting side does not acknowledge its own request.
    problem(api, case_id, "acknowledge", DRAFTER, status=403)
    fire(api, case_id, "acknowledge", HANDLER)
    fire(api, case_id, "start_assessment", HANDLER)
    consult(api, case_id)
    body = {"grounds": ["dual_criminality"], "reasons": "Not an offence here."}
    # A refusal is a supervisor's of the requested State, never the requesting side's.
    problem(api, case_id, "refuse", HANDLER, body, status=403)
    problem(api, case_id, "refuse", VETTER, body, status=403)
    # A participant that is no party does not see the case at all.
    assert call(api, "GET", f"/v1/cases/{case_id}", "nl.officer").status_code == 404
    r = call(api, "POST", f"/v1/cases/{case_id}/events", "nl.officer", json={"event": "accept"})
    assert r.status_code == 404, r.text


# --- 16(16), 16(15): P20.consultation and P20.fiscal-alone -----------------------------------


def test_a_refusal_without_consultation_is_refused_p20_consultation(
    api: Api, sync_engine: Engine
) -> None:
    case_id = to_assessment(api)
    body = {"grounds": ["dual_criminality"], "reasons": "Not an offence here."}
    p = refused_without_change(api, sync_engine, case_id, "refuse", body, 403)
    assert "P20.consultation" in rules(p)
    assert "16(16)" in " ".join(r["citation"] for r in p["reasons"])
    # After consulting the requesting State the same refusal is permitted.
    consult(api, case_id)
    refused = fire(api, case_id, "refuse", DECIDER, body)
    assert refused["case"]["state"] == "REFUSED"
    assert "P20.consultation" not in refused["event"]["policy_rules"]
    assert "REFUSED" in [e["to_state"] for e in get_case(api, case_id, HANDLER)["timeline"]]


@pytest.mark.parametrize(
    ("grounds", "denied"),
    [
        (["fiscal_matter"], True),
        (["fiscal_matter", "other"], True),
        (["fiscal_matter", "dual_criminality"], False),
    ],
)
def test_fiscal_matters_alone_are_never_a_ground_p20_fiscal_alone(
    api: Api, sync_engine: Engine, grounds: list[str], denied: bool
) -> None:
    case_id = to_assessment(api)
    consult(api, case_id)
    body = {"grounds": grounds, "reasons": "Tax offence."}
    if denied:
        p = refused_without_change(api, sync_engine, case_id, "refuse", body, 403)
        assert rules(p) == ["P20.fiscal-alone"]
        assert "16(15)" in p["reasons"][0]["citation"]
    else:
        refused = fire(api, case_id, "refuse", DECIDER, body)
        assert refused["case"]["state"] == "REFUSED"


# --- 16(10): P20.national and the domestic prosecution item ------------------------------------


def test_refusing_a_national_opens_the_domestic_prosecution_the_case_tracks(
    api: Api, sync_engine: Engine
) -> None:
    clock = use_clock(api, FakeClock())
    case_id = to_assessment(api)
    consult(api, case_id)
    national = {"grounds": ["nationality"], "reasons": "The person sought is a US national."}
    # A plain refusal on that ground would close the case: it goes through refuse_national.
    p = refused_without_change(api, sync_engine, case_id, "refuse", national, 422)
    assert p["guard"] == "refusal_not_national"
    assert "16(10)" in p["citation"]
    # ... and refuse_national names the ground.
    other = {"grounds": ["dual_criminality"], "reasons": "Not an offence here."}
    p = refused_without_change(api, sync_engine, case_id, "refuse_national", other, 422)
    assert p["guard"] == "refusal_national"

    fired = fire(api, case_id, "refuse_national", DECIDER, national)
    # The packs decided it as the refusal it is: P20.national permits it, with its obligation.
    assert "P20.national" in fired["event"]["policy_rules"]
    case = fired["case"]
    assert case["state"] == "PROSECUTION_DUE"
    assert [e["event"] for e in case["allowed_events"]] == ["submit_for_prosecution"]
    # The requesting State sees the item and may ask how it goes (16(10): they cooperate).
    seen = get_case(api, case_id)
    assert seen["state"] == "PROSECUTION_DUE"
    assert "progress_query" in [e["event"] for e in seen["allowed_events"]]
    reply = fire(api, case_id, "progress_query", DRAFTER)
    assert reply["reply"]["details"]["state"] == "PROSECUTION_DUE"

    # Years later the item is still open: the node's timers never erase the case meanwhile.
    tick(api, clock.advance(days=3650))
    assert get_case(api, case_id)["state"] == "PROSECUTION_DUE"

    # Only the requested State reports on its own prosecution, a step at a time.
    body = {"authority": "US Attorney, SDNY", "reference": "26-cr-101"}
    problem(api, case_id, "submit_for_prosecution", DRAFTER, body, status=403)
    problem(api, case_id, "report_prosecution", HANDLER, {"outcome": "indicted"}, status=409)
    fire(api, case_id, "submit_for_prosecution", HANDLER, body)
    p = problem(api, case_id, "report_prosecution", HANDLER, {"outcome": "guilty"}, status=422)
    assert p["errors"][0]["field"] == "body.outcome"
    done = case_of(fire(api, case_id, "report_prosecution", HANDLER, {"outcome": "indicted"}))
    assert done["state"] == "PROSECUTION_REPORTED"
    timeline = [e["event"] for e in get_case(api, case_id)["timeline"]]
    assert timeline[-2:] == ["submit_for_prosecution", "report_prosecution"]


# "Without undue delay" (16(10)) has no figure in the Convention: a deployment that sets one
# configures a reference clock on the extradition workflow, and the node's timers remind and
# escalate until the case is submitted for prosecution.
PROSECUTION_CLOCK: dict[str, Any] = {
    "prosecution": {
        "title": "Domestic prosecution instead of extradition",
        "citation": "UNTOC art. 16(10) (deployment configuration)",
        "workflows": ["extradition.request"],
        "legal_bases": None,
        "milestones": [
            {
                "name": "submit",
                "title": "submit the case for prosecution",
                "starts_on": ["refuse_national"],
                "stops_on": ["submit_for_prosecution"],
                "days": 60,
                "remind_before_hours": 240,
            }
        ],
    }
}


def test_a_configured_clock_escalates_until_the_case_is_submitted(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, PROSECUTION_CLOCK)
    case_id = to_assessment(api)
    consult(api, case_id)
    fire(api, case_id, "refuse_national", DECIDER, {"grounds": ["nationality"]})
    due = get_case(api, case_id, HANDLER)["deadlines"][0]
    assert (due["name"], due["status"]) == ("submit", "running")
    tick(api, clock.advance(days=51))
    tick(api, clock.advance(days=10))
    seen = get_case(api, case_id, HANDLER)
    system = [e["event"] for e in seen["timeline"] if e["side"] == "system"]
    assert [e for e in system if e in ("reminder", "escalation")][-2:] == [
        "reminder",
        "escalation",
    ]
    # P20.national's follow_up obligation is carried out too: a tracked item, reminded.
    assert "follow_up_due" in system
    assert seen["overdue"] is True
    fire(api, case_id, "submit_for_prosecution", HANDLER, {"authority": "US Attorney, SDNY"})
    assert get_case(api, case_id, HANDLER)["deadlines"][0]["status"] == "missed"


def test_a_refusal_of_a_national_without_consultation_is_refused_too(
    api: Api, sync_engine: Engine
) -> None:
    case_id = to_assessment(api)
    national = {"grounds": ["nationality"], "reasons": "A national."}
    p = refused_without_change(api, sync_engine, case_id, "refuse_national", national, 403)
    assert rules(p) == ["P20.consultation"]


# --- 16(9): provisional arrest ------------------------------------------------------------


def test_provisional_arrest_is_asked_only_when_urgent(api: Api) -> None:
    case_id = to_assessment(api)
    body = {"reasons": "Flight risk: the person sought holds a ticket for tomorrow."}
    p = problem(api, case_id, "request_provisional_arrest", DRAFTER, body, status=409)
    assert p["guard"] == "urgent_provisional_arrest"
    assert "16(9)" in p["citation"]
    # The requested State does not arrest on its own motion under 16(9).
    p = problem(api, case_id, "provisional_arrest", HANDLER, {}, status=409)
    assert p["guard"] == "provisional_arrest_asked"


def test_an_urgent_request_gets_its_provisional_arrest(api: Api) -> None:
    case_id = to_assessment(api, urgent=True)
    body = {"reasons": "Flight risk: the person sought holds a ticket for tomorrow."}
    problem(api, case_id, "provisional_arrest", HANDLER, {}, status=409)
    asked = fire(api, case_id, "request_provisional_arrest", DRAFTER, body)
    assert asked["case"]["state"] == "ASSESSMENT"
    assert "provisional_arrest_requested" in asked["case"]["records"]
    problem(api, case_id, "request_provisional_arrest", DRAFTER, body, status=409)
    held = fire(api, case_id, "provisional_arrest", HANDLER, {"note": "In custody."})
    assert "provisional_arrest" in held["case"]["records"]
    problem(api, case_id, "provisional_arrest", HANDLER, {}, status=409)


def test_bad_bodies_are_named(api: Api) -> None:
    case_id = to_assessment(api)
    p = problem(api, case_id, "open_consultation", HANDLER, {"reason": "costs"}, status=422)
    fields = {e["field"] for e in p["errors"]}
    assert {"body.reason", "body.message"} <= fields
    p = problem(api, case_id, "refuse", DECIDER, {"grounds": ["whim"]}, status=422)
    assert p["errors"][0]["field"] == "body.grounds.0"
    r = call(
        api,
        "POST",
        "/v1/cases",
        DRAFTER,
        json={
            "workflow": WORKFLOW,
            "counterpart": REQUESTED,
            "request": extradition_request(max_penalty_years=-1),
        },
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "request.max_penalty_years"
