"""Case answers that teach (issue 14 item 8), through the HTTP API.

- The requested State may consult during execution, on an intended postponement or on costs
  found then (UNTOC art. 18(25), 18(26), 18(28)), and the case returns to IN_EXECUTION when
  the consultation ends.
- An event the workflow has but the state does not allow is answered with the rule that
  governs it where one exists (refusing while assessing: "consult first", 18(26)), the states
  it fires from, and the events this caller may fire (its side and roles, four eyes applied).
- P1.language's refusal names the languages the requested State accepts (18(14)).
- The four-eyes refusal says a supervisor must transmit (18(13)).
- A progress reply's ``since`` is when the case entered its state (18(24)).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import (
    DECIDER,
    DRAFTER,
    HANDLER,
    VETTER,
    FakeClock,
    case_of,
    fire,
    get_case,
    mla_request,
    open_case,
    problem,
    to_assessment,
    to_execution,
    use_clock,
)


def _consult(api: Api, case_id: str, reason: str) -> dict[str, Any]:
    body = {"reason": reason, "message": "Execution costs far more than planned: share them?"}
    return case_of(fire(api, case_id, "open_consultation", HANDLER, body))


# --- 18(25), 18(26), 18(28): a consultation during execution --------------------------------


def test_a_consultation_during_execution_returns_to_execution(api: Api) -> None:
    case = to_execution(api)
    consulting = _consult(api, case["id"], "costs")
    assert consulting["state"] == "CONSULTATION"
    assert {"consultation", "cost_consultation"} <= set(consulting["records"])
    back = case_of(fire(api, case["id"], "back_to_assessment", HANDLER, {}))
    assert back["state"] == "IN_EXECUTION"


def test_conditions_accepted_during_execution_return_to_execution(api: Api) -> None:
    case = to_execution(api)
    _consult(api, case["id"], "costs")
    fire(api, case["id"], "offer_conditions", HANDLER, {"conditions": ["costs shared 50/50"]})
    accepted = case_of(fire(api, case["id"], "accept_conditions", VETTER))
    assert accepted["state"] == "IN_EXECUTION"
    assert accepted["restrictions"] == ["costs shared 50/50"]


def test_a_postponement_consulted_on_during_execution_may_follow(api: Api) -> None:
    case = to_execution(api)
    _consult(api, case["id"], "postponement")
    fire(api, case["id"], "back_to_assessment", HANDLER, {})
    review = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    body = {"grounds": ["ongoing_investigation"], "reasons": "Covert phase.", "review_date": review}
    assert case_of(fire(api, case["id"], "postpone", HANDLER, body))["state"] == "POSTPONED"


def test_a_consultation_during_assessment_still_returns_to_assessment(api: Api) -> None:
    case = to_assessment(api)
    _consult(api, case["id"], "costs")
    assert case_of(fire(api, case["id"], "back_to_assessment", HANDLER, {}))["state"] == (
        "ASSESSMENT"
    )


@pytest.mark.parametrize("reason", ["intended_refusal", "confidentiality"])
def test_during_execution_only_postponement_or_costs_are_consulted_on(
    api: Api, sync_engine: Engine, reason: str
) -> None:
    case = to_execution(api)
    before = count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"])
    body = {"reason": reason, "message": "?"}
    p = problem(api, case["id"], "open_consultation", HANDLER, body)
    assert p["guard"] == "execution_consultation", p
    assert "18(28)" in p["citation"], p
    assert get_case(api, case["id"])["state"] == "IN_EXECUTION"
    assert count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"]) == before


# --- an event out of place answers with its rule --------------------------------------------


def test_refusing_while_assessing_answers_consult_first(api: Api, sync_engine: Engine) -> None:
    case = to_assessment(api)
    before = count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"])
    body = {"grounds": ["essential_interests"], "reasons": "Sovereignty."}
    p = problem(api, case["id"], "refuse", DECIDER, body, status=409)
    assert p["type"] == "urn:palermo:problem:invalid-state", p
    assert p["rule"].startswith("consult first"), p
    assert p["citation"] == "UNTOC art. 18(26)", p
    assert "consult first" in p["detail"], p
    assert "18(26)" in p["detail"], p
    assert p["fires_from"] == ["CONSULTATION"], p
    assert "open_consultation" in p["allowed_events"], p
    assert count_rows(sync_engine, "case_events", "case_id = :c", c=case["id"]) == before


def test_postponing_before_execution_names_its_rule(api: Api) -> None:
    case = to_assessment(api)
    p = problem(api, case["id"], "postpone", HANDLER, {}, status=409)
    assert p["citation"] == "UNTOC art. 18(25), 18(26)", p
    assert p["fires_from"] == ["IN_EXECUTION"], p


def test_an_event_without_a_rule_names_where_it_fires(api: Api) -> None:
    case = to_assessment(api)
    p = problem(api, case["id"], "confirm_receipt", DRAFTER, status=409)
    assert "rule" not in p, p
    assert p["fires_from"] == ["EXECUTED"], p
    assert "it fires from EXECUTED" in p["detail"], p


def test_the_allowed_events_are_the_callers_own(api: Api) -> None:
    """In ASSESSMENT the requested side decides; the requesting side may only ask, give
    notice, confirm or withdraw. Each is told only its own, by side and role."""
    case = to_assessment(api)
    asked = problem(api, case["id"], "complete", DRAFTER, status=409)["allowed_events"]
    assert {"withdraw", "progress_query"} <= set(asked), asked
    assert not {"accept", "open_consultation", "request_information"} & set(asked), asked
    handler = problem(api, case["id"], "complete", HANDLER, status=409)["allowed_events"]
    assert {"accept", "open_consultation", "request_information"} <= set(handler), handler
    assert not {"withdraw", "progress_query"} & set(handler), handler
    # the same list as the case's own allowed events for that caller
    shown = [e["event"] for e in get_case(api, case["id"], HANDLER)["allowed_events"]]
    assert handler == shown


def test_an_unknown_event_lists_the_callers_events(api: Api) -> None:
    case = to_assessment(api)
    p = problem(api, case["id"], "teleport", DRAFTER, status=409)
    assert "not an event of the mla.request workflow" in p["detail"], p
    assert "accept" not in p["allowed_events"], p


# --- 18(14): the languages the requested State accepts ------------------------------------


def test_a_language_refusal_names_the_languages_accepted(api: Api) -> None:
    case = open_case(api, request=mla_request(language="it"))
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    p = problem(api, case["id"], "transmit", VETTER, status=403)
    assert p["type"] == "urn:palermo:problem:policy-denied", p
    [reason] = [r for r in p["reasons"] if r["rule"] == "P1.language"]
    # the United States accepts English only (policies/data/jurisdictions.yaml)
    assert reason["reference"] == {"accepted_languages": ["en"]}, reason
    assert "(accepted_languages: en)" in p["detail"], p


def test_a_refusal_on_other_grounds_names_no_reference_data(api: Api) -> None:
    case = open_case(api, request=mla_request(requesting_authority=None))
    p = problem(api, case["id"], "submit_for_vetting", DRAFTER, status=403)
    assert p["type"] == "urn:palermo:problem:policy-denied", p
    assert all("reference" not in r for r in p["reasons"]), p


# --- 18(13): four eyes --------------------------------------------------------------------


def test_the_four_eyes_refusal_says_a_supervisor_must_transmit(api: Api) -> None:
    case = open_case(api, as_=VETTER)  # the supervisor drafts it this time
    fire(api, case["id"], "submit_for_vetting", VETTER)
    p = problem(api, case["id"], "transmit", VETTER, status=403)
    assert p["guard"] == "four_eyes", p
    assert "a supervisor of the central authority who did not draft it" in p["detail"], p


# --- 18(24): progress -----------------------------------------------------------------------


def test_a_progress_reply_says_since_when_the_case_is_in_its_state(api: Api) -> None:
    clock = use_clock(api, FakeClock())
    case = to_assessment(api)
    entered = clock.now
    clock.advance(days=3)
    fire(api, case["id"], "no_longer_needed", DRAFTER, {"reason": "partly: the bank only"})
    clock.advance(days=2)
    reply = fire(api, case["id"], "progress_query", DRAFTER)["reply"]
    assert reply["details"]["state"] == "ASSESSMENT"
    assert dt.datetime.fromisoformat(reply["details"]["since"]) == entered
    clock.advance(days=1)
    fire(api, case["id"], "accept", HANDLER)
    accepted_at = clock.now
    clock.advance(hours=5)
    reply = fire(api, case["id"], "progress_query", DRAFTER)["reply"]
    assert reply["details"]["state"] == "ACCEPTED"
    assert dt.datetime.fromisoformat(reply["details"]["since"]) == accepted_at
