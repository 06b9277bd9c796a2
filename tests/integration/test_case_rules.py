"""The article 18 rules of domain/MLA.md, each tried and broken through the HTTP API: every
break is a clear 4xx naming the rule (policy) or guard and its citation, and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import (
    DECIDER,
    DRAFTER,
    HANDLER,
    VETTER,
    fire,
    get_case,
    mla_request,
    open_case,
    problem,
    register_partner,
    to_assessment,
    to_execution,
    to_transmitted,
    upload,
)


def rules(p: dict[str, Any]) -> list[str]:
    assert p["type"] == "urn:palermo:problem:policy-denied", p
    assert all(r["citation"] for r in p["reasons"])
    return [r["rule"] for r in p["reasons"]]


def to_consultation(api: Api, reason: str = "intended_refusal", **request: Any) -> dict[str, Any]:
    case = to_assessment(api, **request)
    body = {"reason": reason, "message": "We consider refusing; can the request be narrowed?"}
    fire(api, case["id"], "open_consultation", HANDLER, body)
    return case


# --- 18(15): the particulars before vetting -------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "rule"),
    [
        ("requesting_authority", "P1.fields.a"),
        ("subject_matter", "P1.fields.b"),
        ("conducting_authority", "P1.fields.b"),
        ("facts_summary", "P1.fields.c"),
        ("assistance_sought", "P1.fields.d"),
    ],
)
def test_an_incomplete_request_is_not_vetted(
    api: Api, sync_engine: Engine, missing: str, rule: str
) -> None:
    request = mla_request()
    del request[missing]
    case = open_case(api, request=request)
    p = problem(api, case["id"], "submit_for_vetting", DRAFTER, status=403)
    assert rule in rules(p)
    assert "18(15)" in " ".join(r["citation"] for r in p["reasons"])
    assert get_case(api, case["id"])["state"] == "DRAFT"
    assert count_rows(sync_engine, "case_events") == 0
    leaf = "kind = 'message:refused'"
    assert count_rows(sync_engine, "audit_events", leaf) == 1


def test_a_request_only_for_service_of_documents_needs_no_facts(api: Api) -> None:
    request = mla_request(assistance_types=["service_of_documents"])
    del request["facts_summary"]
    case = open_case(api, request=request)
    assert fire(api, case["id"], "submit_for_vetting", DRAFTER)["case"]["state"] == "CA_VETTING"


def test_the_drafter_completes_a_returned_request(api: Api) -> None:
    request = mla_request()
    del request["facts_summary"]
    case = open_case(api, request=request)
    problem(api, case["id"], "submit_for_vetting", DRAFTER, status=403)
    amended = fire(api, case["id"], "submit_for_vetting", DRAFTER, {"request": mla_request()})
    assert "facts_summary" in amended["case"]["fields"]
    # Vetting returns it with comments (required), and it comes back.
    problem(api, case["id"], "return_to_drafter", VETTER, {})
    fire(api, case["id"], "return_to_drafter", VETTER, {"comments": "Name the bank."})
    assert get_case(api, case["id"])["state"] == "DRAFT"


def test_a_deadline_needs_its_reason(api: Api) -> None:
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=60)).isoformat()
    case = open_case(api, request=mla_request(deadline=due))
    assert rules(problem(api, case["id"], "submit_for_vetting", DRAFTER, status=403)) == [
        "P10.deadline-reason"
    ]
    body = {"request": mla_request(deadline=due, deadline_reason="trial opens on 1 June")}
    fire(api, case["id"], "submit_for_vetting", DRAFTER, body)


# --- 18(13)-(14): language, channel, legal basis, four eyes -------------------------------


def _vetted(api: Api, **request: Any) -> dict[str, Any]:
    case = open_case(api, request=mla_request(**request))
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    return case


def test_a_language_the_requested_state_does_not_accept_is_not_transmitted(
    api: Api, sync_engine: Engine
) -> None:
    case = _vetted(api, language="it")  # the US accepts English only (reference data)
    assert rules(problem(api, case["id"], "transmit", VETTER, status=403)) == ["P1.language"]
    assert get_case(api, case["id"])["state"] == "CA_VETTING"
    assert count_rows(sync_engine, "messages", "recipient_id = 'us.central-authority'") == 0


def test_a_channel_the_requested_state_did_not_notify_is_refused(api: Api) -> None:
    case = _vetted(api, channel="direct_judicial")
    assert "P2.channel" in rules(problem(api, case["id"], "transmit", VETTER, status=403))


def test_a_legal_basis_not_in_force_between_the_states_is_refused(api: Api) -> None:
    case = _vetted(api, legal_basis="eu-eio")
    assert rules(problem(api, case["id"], "transmit", VETTER, status=403)) == ["MLA.legal-basis"]


def test_the_drafter_cannot_transmit_four_eyes(api: Api) -> None:
    case = open_case(api, as_=VETTER)  # the supervisor drafts it this time
    fire(api, case["id"], "submit_for_vetting", VETTER)
    p = problem(api, case["id"], "transmit", VETTER, status=403)
    assert p["type"] == "urn:palermo:problem:guard-forbidden"
    assert p["guard"] == "four_eyes"
    assert "transmit" not in [
        e["event"] for e in get_case(api, case["id"], VETTER)["allowed_events"]
    ]
    # An officer may not transmit at all: vetting is the central authority's supervisors'.
    p = problem(api, case["id"], "transmit", DRAFTER, status=403)
    assert p["type"] == "urn:palermo:problem:forbidden"


def test_only_the_right_side_fires_an_event(api: Api) -> None:
    case = to_transmitted(api)
    p = problem(api, case["id"], "acknowledge", DRAFTER, status=403)
    assert "requested side" in p["detail"]
    p = problem(api, case["id"], "withdraw", HANDLER, {"reason": "no"}, status=403)
    assert "requesting side" in p["detail"]
    p = problem(api, case["id"], "complete", HANDLER, status=409)
    assert p["type"] == "urn:palermo:problem:invalid-state"
    assert "acknowledge" in p["allowed_events"]
    assert "complete" not in p["allowed_events"]


# --- 18(16): additional information pauses the clock -------------------------------------


def test_additional_information_needs_a_question_and_pauses_the_clock(api: Api) -> None:
    case = to_assessment(api)
    problem(api, case["id"], "request_information", HANDLER, {})
    paused = fire(api, case["id"], "request_information", HANDLER, {"question": "Which bank?"})
    assert paused["case"]["state"] == "INFO_REQUESTED"
    assert paused["case"]["paused"] is True
    resumed = fire(api, case["id"], "provide_information", DRAFTER, {"information": "Bank X"})
    assert resumed["case"]["paused"] is False
    assert resumed["case"]["state"] == "ASSESSMENT"


# --- 18(21)-(23), 18(26): refusal ----------------------------------------------------------


def test_refusal_only_after_consultation(api: Api) -> None:
    case = to_assessment(api)
    body = {"grounds": ["essential_interests"], "reasons": "Sovereignty."}
    p = problem(api, case["id"], "refuse", DECIDER, body, status=409)
    assert p["type"] == "urn:palermo:problem:invalid-state"
    assert "open_consultation" in p["allowed_events"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"grounds": ["bank_secrecy"], "reasons": "Banking law."}, "P7.bank-secrecy"),
        ({"grounds": ["fiscal_matter"], "reasons": "Tax."}, "P7.fiscal-alone"),
        ({"grounds": ["other"], "reasons": "We do not like it."}, "P7.ground"),
        ({"grounds": ["essential_interests"]}, "P7.reasons"),
        (
            {"grounds": ["domestic_law_prohibits", "bank_secrecy"], "reasons": "x"},
            "P7.bank-secrecy",
        ),
    ],
)
def test_refusal_grounds_are_limited_and_reasoned(
    api: Api, body: dict[str, Any], expected: str
) -> None:
    case = to_consultation(api)
    assert expected in rules(problem(api, case["id"], "refuse", DECIDER, body, status=403))
    assert get_case(api, case["id"])["state"] == "CONSULTATION"


def test_an_unknown_ground_is_a_schema_error(api: Api) -> None:
    case = to_consultation(api)
    p = problem(api, case["id"], "refuse", DECIDER, {"grounds": ["dislike"], "reasons": "x"})
    assert p["type"] == "urn:palermo:problem:schema-violation"
    assert p["errors"][0]["field"].startswith("body.grounds")


def test_a_lawful_refusal_is_final(api: Api) -> None:
    case = to_consultation(api)
    problem(api, case["id"], "refuse", HANDLER, {"grounds": ["essential_interests"]}, status=403)
    body = {"grounds": ["essential_interests", "fiscal_matter"], "reasons": "Security."}
    refused = fire(api, case["id"], "refuse", DECIDER, body)
    assert refused["case"]["state"] == "REFUSED"
    assert refused["event"]["details"]["grounds"] == ["essential_interests", "fiscal_matter"]
    assert get_case(api, case["id"])["allowed_events"] == []
    problem(api, case["id"], "withdraw", DRAFTER, {"reason": "late"}, status=409)


# --- 18(25)-(26): postponement -------------------------------------------------------------


def _review(days: int = 30) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


def test_postponement_needs_the_ground_a_consultation_and_a_review_date(api: Api) -> None:
    case = to_execution(api)  # never consulted
    ok = {
        "grounds": ["ongoing_investigation"],
        "reasons": "Covert phase.",
        "review_date": _review(),
    }
    assert rules(problem(api, case["id"], "postpone", HANDLER, ok, status=403)) == [
        "P8.consultation"
    ]
    consulted = to_consultation(api, reason="postponement")
    fire(api, consulted["id"], "back_to_assessment", HANDLER)
    fire(api, consulted["id"], "accept", HANDLER)
    fire(api, consulted["id"], "assign_execution", HANDLER, {"executing_authority": "SDNY"})
    wrong = {**ok, "grounds": ["essential_interests"]}
    assert rules(problem(api, consulted["id"], "postpone", HANDLER, wrong, status=403)) == [
        "P8.ground"
    ]
    undated = {k: v for k, v in ok.items() if k != "review_date"}
    assert rules(problem(api, consulted["id"], "postpone", HANDLER, undated, status=403)) == [
        "P8.review-date"
    ]
    past = {**ok, "review_date": _review(-1)}
    p = problem(api, consulted["id"], "postpone", HANDLER, past)
    assert p["guard"] == "review_date_future"
    postponed = fire(api, consulted["id"], "postpone", HANDLER, ok)["case"]
    assert postponed["state"] == "POSTPONED"
    assert postponed["review_date"] is not None
    assert fire(api, consulted["id"], "resume", HANDLER)["case"]["review_date"] is None


# --- 18(26), P9: conditions become restrictions ---------------------------------------------


def test_accepted_conditions_bind_everything_the_case_returns(
    api: Api, sync_engine: Engine
) -> None:
    case = to_consultation(api)
    problem(api, case["id"], "offer_conditions", HANDLER, {"conditions": []})
    conditions = ["use only in proceeding RG 1234/2026", "no onward transfer to third States"]
    fire(api, case["id"], "offer_conditions", HANDLER, {"conditions": conditions})
    problem(api, case["id"], "accept_conditions", DRAFTER, status=403)  # binds the State
    accepted = fire(api, case["id"], "accept_conditions", VETTER)["case"]
    assert accepted["state"] == "ACCEPTED"
    assert accepted["restrictions"] == conditions
    fire(api, case["id"], "assign_execution", HANDLER, {"executing_authority": "SDNY"})
    file_id = upload(api, case["id"], HANDLER, b"%PDF-1.7 statements")
    sent = fire(api, case["id"], "deliver_partial", HANDLER, {"evidence": [file_id]})
    # The delivery's terms of onward use carry the conditions as restrictions (P9).
    with sync_engine.connect() as conn:
        row = conn.execute(
            text("SELECT restrictions FROM message_terms WHERE message_id = :m"),
            {"m": sent["event"]["message_id"]},
        ).one()
    restrictions = row.restrictions
    if isinstance(restrictions, str):
        restrictions = json.loads(restrictions)
    assert restrictions == conditions
    assert "P9.conditions" in sent["event"]["policy_rules"]


# --- 18(3), 18(24): partial and final execution with evidence packages -------------------


def test_execution_delivers_evidence_packages(api: Api, sync_engine: Engine) -> None:
    case = to_execution(api)
    problem(api, case["id"], "deliver_partial", HANDLER, {"evidence": []})
    mine = upload(api, case["id"], DRAFTER, b"requesting side's file")
    p = problem(api, case["id"], "deliver_partial", HANDLER, {"evidence": [mine]})
    assert p["guard"] == "evidence_ready"
    first = upload(api, case["id"], HANDLER, b"bank statements 2024")
    # Not yet delivered: the requesting side does not see it.
    r = api.get(
        f"/v1/cases/{case['id']}/evidence/{first}",
        as_=DRAFTER,
        params={"justification": "reading the evidence"},
    )
    assert r.status_code == 404
    part = fire(api, case["id"], "deliver_partial", HANDLER, {"evidence": [first]})
    assert part["case"]["state"] == "IN_EXECUTION"
    assert (
        problem(api, case["id"], "deliver_partial", HANDLER, {"evidence": [first]})["guard"]
        == "evidence_ready"
    )
    last = upload(api, case["id"], HANDLER, b"bank statements 2025")
    done = fire(api, case["id"], "complete", HANDLER, {"evidence": [last]})
    assert done["case"]["state"] == "EXECUTED"
    r = api.get(
        f"/v1/cases/{case['id']}/evidence/{last}",
        as_=DRAFTER,
        params={"justification": "reading the evidence"},
    )
    assert r.status_code == 200, r.text
    assert r.content == b"bank statements 2025"
    consulted = "kind = 'content:consulted'"
    assert count_rows(sync_engine, "audit_events", consulted) == 1
    closed = fire(api, case["id"], "confirm_receipt", DRAFTER)["case"]
    assert closed["state"] == "CLOSED"
    assert [e["event"] for e in closed["allowed_events"]] == ["exculpatory_notice"]


# --- withdrawal and closure ---------------------------------------------------------------


def test_withdrawal_needs_a_reason_and_ends_the_case(api: Api) -> None:
    case = to_transmitted(api)
    problem(api, case["id"], "withdraw", DRAFTER, {})
    done = fire(api, case["id"], "withdraw", DRAFTER, {"reason": "The suspect died."})
    assert done["case"]["state"] == "WITHDRAWN"
    assert "reason" not in done["event"]["details"]  # its text stays in the envelope
    problem(api, case["id"], "acknowledge", HANDLER, status=409)


def test_closure_and_erasure_are_not_the_participants_to_fire(api: Api) -> None:
    case = to_transmitted(api)
    fire(api, case["id"], "withdraw", DRAFTER, {"reason": "Not needed."})
    p = problem(api, case["id"], "expire_retention", DRAFTER, status=403)
    assert "system side" in p["detail"]


# --- 18(28), P11: extraordinary costs -------------------------------------------------------


def test_extraordinary_costs_are_settled_before_execution(api: Api) -> None:
    case = to_assessment(api, extraordinary_costs=True)
    fire(api, case["id"], "accept", HANDLER)
    body = {"executing_authority": "SDNY"}
    assert rules(problem(api, case["id"], "assign_execution", HANDLER, body, status=403)) == [
        "P11.cost-consultation"
    ]
    costly = to_consultation(api, reason="costs", extraordinary_costs=True)
    assert "cost_consultation" in get_case(api, costly["id"])["records"]
    fire(api, costly["id"], "back_to_assessment", HANDLER)
    fire(api, costly["id"], "accept", HANDLER)
    fire(api, costly["id"], "assign_execution", HANDLER, body)


# --- 18(20), P6: confidentiality ---------------------------------------------------------


def test_a_confidential_case_is_seen_only_by_case_handlers(api: Api) -> None:
    case = to_transmitted(api, confidential=True)
    assert api.get(f"/v1/cases/{case['id']}", as_="it.system").status_code == 404
    assert api.get("/v1/cases", as_="it.system").json()["items"] == []
    assert get_case(api, case["id"], HANDLER)["confidential"] is True
    # The requested side that cannot keep it confidential says so in consultation (the
    # notice 18(20) requires) before anything proceeds.
    fire(api, case["id"], "acknowledge", HANDLER)
    fire(api, case["id"], "start_assessment", HANDLER)
    body = {"reason": "confidentiality", "message": "A court order will be public."}
    records = fire(api, case["id"], "open_consultation", HANDLER, body)["case"]["records"]
    assert {"confidentiality_cannot_be_kept", "confidentiality_notice"} <= set(records)


# --- P3: oral or INTERPOL urgent requests are confirmed in writing -----------------------


def test_written_confirmation_only_follows_an_oral_request(api: Api) -> None:
    case = to_transmitted(api)
    p = problem(api, case["id"], "written_confirmation", DRAFTER, status=409)
    assert p["guard"] == "confirms_oral_request"
    oral = to_transmitted(api, urgent=True, initiated_by="oral")
    done = fire(api, oral["id"], "written_confirmation", DRAFTER, {"reference": "note 12/2026"})
    assert "written_confirmation" in done["case"]["records"]
    problem(api, oral["id"], "written_confirmation", DRAFTER, status=409)


# --- 18(19): use for another proceeding needs the requested State's consent ---------------


def test_use_for_another_proceeding_is_asked_and_granted(api: Api) -> None:
    case = to_execution(api)
    file_id = upload(api, case["id"], HANDLER, b"records")
    fire(api, case["id"], "complete", HANDLER, {"evidence": [file_id]})
    body = {"recipient": "it.court-milano", "purpose": "trial RG 999/2026"}
    thread = open_case(api, DRAFTER, workflow="consent", parent_id=case["id"], body=body)
    assert thread["timeline"][0]["event"] == "use_extension_request"
    assert thread["requested"] == "us.central-authority"
    problem(api, thread["id"], "grant_consent", DRAFTER, {}, status=403)
    fire(api, thread["id"], "grant_consent", DECIDER, {"conditions": ["not for tax matters"]})
    consents = get_case(api, case["id"])["terms"]["consents"]
    assert [(c["recipient"], c["purpose"]) for c in consents] == [
        ("it.court-milano", "trial RG 999/2026")
    ]
    notice = fire(api, case["id"], "exculpatory_notice", DRAFTER, {})
    assert "exculpatory_notice" in notice["case"]["records"]


# --- P22: a flagged State needs an assurance on record -------------------------------------


def test_a_flagged_state_needs_an_assurance_before_transfer(api: Api) -> None:
    register_partner(api, "xa.central-authority", "central_authority", {"xa.officer": "officer"})
    request = mla_request(legal_basis="untoc")
    case = open_case(api, counterpart="xa.central-authority", request=request)
    fire(api, case["id"], "submit_for_vetting", DRAFTER)
    assert rules(problem(api, case["id"], "transmit", VETTER, status=403)) == ["P22.transfer"]
    fire(
        api,
        case["id"],
        "record_assurance",
        DRAFTER,
        {"assurance": "Note verbale 12/2026: the death penalty will not be sought."},
    )
    assert fire(api, case["id"], "transmit", VETTER)["case"]["state"] == "TRANSMITTED"
    fire(api, case["id"], "acknowledge", "xa.officer")
