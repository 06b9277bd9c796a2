"""FIU flows through the HTTP API (domain/FIU.md): requests with their required fields and
interim / partial / full / negative responses, spontaneous disclosures, consent for
dissemination (presumed only for named recipients), feedback, and anonymous matching with
keyed filters that never shows the broker a subject."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from broker.fiu.filters import keyed_filters, matches, new_exchange_key
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import (
    call,
    event_payload,
    fire,
    get_case,
    open_case,
    problem,
    register_partner,
)

NL, IT = "nl.fiu", "it.fiu"
ANALYST, HEAD = "it.analyst", "it.fiu-head"  # the Italian FIU, registered in each test


@pytest.fixture
def partner(api: Api) -> dict[str, str]:
    return register_partner(api, IT, "fiu", {ANALYST: "officer", HEAD: "supervisor"})


def fiu_request(**over: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "facts": "Structured cash deposits at three branches, then wires to Milan.",
        "reasons": "Suspected laundering of proceeds of fraud.",
        "link_to_country": "Beneficiary accounts are held in Italy.",
        "intended_use": "Intelligence for the FIU's analysis; no evidence in court.",
        "purpose": "money_laundering_analysis",
        "legal_basis": "egmont-principles",
        "subjects": [{"ref": "s1", "category": "suspect", "identity": "ACME Srl"}],
        "named_recipients": ["nl.fiod"],
    }
    request.update(over)
    return request


def disclosure(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "facts": "Cash couriers moving funds through Rotterdam to Genoa.",
        "purpose": "money_laundering_analysis",
        "legal_basis": "egmont-principles",
        "permitted_recipients": ["it.fiu"],
        "permitted_purposes": ["money_laundering_analysis"],
    }
    d.update(over)
    return d


def submitted(api: Api, **over: Any) -> dict[str, Any]:
    case = open_case(
        api, "nl.officer", workflow="fiu.request", counterpart=IT, request=fiu_request(**over)
    )
    fire(api, case["id"], "submit", "nl.officer")
    return case


def responded(api: Api, kind: str = "full") -> dict[str, Any]:
    case = submitted(api)
    fire(api, case["id"], "acknowledge", ANALYST)
    fire(api, case["id"], "process", ANALYST)
    fire(
        api,
        case["id"],
        "respond",
        ANALYST,
        {
            "kind": kind,
            "summary": "Two accounts",
            "permitted_purposes": ["money_laundering_analysis"],
        },
    )
    return case


def rules(p: dict[str, Any]) -> list[str]:
    assert p["type"] == "urn:palermo:problem:policy-denied", p
    return [r["rule"] for r in p["reasons"]]


# --- requests -------------------------------------------------------------------------------


def test_a_request_states_facts_reasons_link_and_use(api: Api, partner: dict[str, str]) -> None:
    request = fiu_request()
    del request["intended_use"]
    case = open_case(api, "nl.officer", workflow="fiu.request", counterpart=IT, request=request)
    assert rules(problem(api, case["id"], "submit", "nl.officer", status=403)) == [
        "FIU.request-fields"
    ]
    sent = fire(api, case["id"], "submit", "nl.officer", {"request": fiu_request()})
    payload = event_payload(api, sent, "nl.officer")
    assert payload["type"] == "fiu.request"
    assert payload["recipient"] == IT
    # The named recipients are the response's to permit, not the request's (P18).
    assert payload.get("permitted_recipients", []) == []
    assert sent["case"]["state"] == "SUBMITTED"
    reply = next(d for d in sent["case"]["deadlines"] if d["name"] == "reply")
    assert reply["source"] == "egmont"
    assert reply["status"] == "running"


def test_responses_interim_then_full_then_closed(api: Api, partner: dict[str, str]) -> None:
    case = submitted(api)
    fire(api, case["id"], "acknowledge", ANALYST)
    fire(api, case["id"], "process", ANALYST)
    body: dict[str, Any] = {"kind": "interim", "permitted_purposes": ["money_laundering_analysis"]}
    problem(api, case["id"], "respond", ANALYST, {"kind": "interim"})  # purposes are required
    first = fire(api, case["id"], "respond", ANALYST, body)
    assert first["case"]["response_kind"] == "interim"
    payload = event_payload(api, first, ANALYST)
    assert payload["type"] == "fiu.response"
    assert payload["permitted_purposes"] == ["money_laundering_analysis"]
    allowed = get_case(api, case["id"], ANALYST)["allowed_events"]
    assert "respond" in [e["event"] for e in allowed]  # after an interim one, more may follow
    full = fire(api, case["id"], "respond", ANALYST, {**body, "kind": "full"})
    assert full["case"]["state"] == "RESPONDED"
    # Answered in full: respond is no longer offered (guard response_open decides from the
    # case alone), though firing it still answers with the guard.
    allowed = get_case(api, case["id"], ANALYST)["allowed_events"]
    assert "respond" not in [e["event"] for e in allowed]
    p = problem(api, case["id"], "respond", ANALYST, {**body, "kind": "partial"}, status=409)
    assert p["guard"] == "response_open"
    assert fire(api, case["id"], "close", "nl.officer")["case"]["state"] == "CLOSED"


def test_no_refusal_on_fiscal_or_secrecy_grounds(api: Api, partner: dict[str, str]) -> None:
    case = submitted(api)
    fire(api, case["id"], "acknowledge", ANALYST)
    body = {"grounds": ["secrecy"], "reasons": "Banking secrecy law."}
    assert rules(problem(api, case["id"], "refuse", HEAD, body, status=403)) == [
        "FIU.refusal-grounds"
    ]
    ok = {"grounds": ["other"], "reasons": "No link to Italy found."}
    assert fire(api, case["id"], "refuse", HEAD, ok)["case"]["state"] == "REFUSED"


# --- disclosures, consent, feedback ------------------------------------------------------


def disclosed(api: Api) -> dict[str, Any]:
    case = open_case(
        api, "nl.officer", workflow="fiu.disclosure", counterpart=IT, request=disclosure()
    )
    sent = fire(api, case["id"], "submit", "nl.officer")
    assert sent["case"]["state"] == "SPONTANEOUS_DISCLOSURE"
    return case


def test_a_spontaneous_disclosure_carries_its_terms(api: Api, partner: dict[str, str]) -> None:
    case = disclosed(api)
    seen = get_case(api, case["id"], ANALYST)
    assert seen["terms"] == {
        "permitted_recipients": ["it.fiu"],
        "permitted_purposes": ["money_laundering_analysis"],
    }
    relay(api.settings)
    inbox = call(api, "GET", "/v1/inbox", ANALYST).json()["items"]
    assert [i["message"]["type"] for i in inbox] == ["fiu.disclosure"]
    assert fire(api, case["id"], "acknowledge", ANALYST)["case"]["state"] == "ACKNOWLEDGED"


def ask_consent(api: Api, case_id: str, who: str = ANALYST, **body: Any) -> dict[str, Any]:
    body = {"recipient": "it.guardia-di-finanza", "purpose": "tax_investigation", **body}
    return open_case(api, who, workflow="consent", parent_id=case_id, body=body)


def test_consent_is_refused_with_reasons_or_granted(
    api: Api, partner: dict[str, str], sync_engine: Engine
) -> None:
    case = disclosed(api)
    # The named recipient, for the named purpose, needs no consent: it is presumed.
    r = call(
        api,
        "POST",
        "/v1/cases",
        ANALYST,
        json={
            "workflow": "consent",
            "parent_id": case["id"],
            "body": {"recipient": "it.fiu", "purpose": "money_laundering_analysis"},
        },
    )
    assert r.status_code == 409, r.text
    assert r.json()["guard"] == "consent_needed"

    thread = ask_consent(api, case["id"])
    assert thread["workflow"] == "consent"
    assert thread["state"] == "CONSENT_REQUESTED"
    assert thread["timeline"][0]["event"] == "request_consent"
    assert [t["id"] for t in get_case(api, case["id"], "nl.officer")["threads"]] == [thread["id"]]
    body = {"grounds": ["secrecy"], "reasons": "Ongoing tax secrecy."}
    assert rules(problem(api, thread["id"], "refuse_consent", "nl.officer", body, status=403)) == [
        "FIU.refusal-grounds"
    ]
    assert rules(
        problem(
            api, thread["id"], "refuse_consent", "nl.officer", {"grounds": ["other"]}, status=403
        )
    ) == ["FIU.consent-refusal-reasons"]
    refused = fire(
        api,
        thread["id"],
        "refuse_consent",
        "nl.officer",
        {"grounds": ["other"], "reasons": "The source would be exposed."},
    )
    assert refused["case"]["state"] == "CONSENT_REFUSED"
    assert count_rows(sync_engine, "audit_events", "kind = 'consent:refused'") == 1

    second = ask_consent(api, case["id"], purpose="criminal_investigation")
    granted = fire(
        api,
        second["id"],
        "grant_consent",
        "nl.officer",
        {"conditions": ["no disclosure to the suspect"]},
    )
    assert granted["case"]["state"] == "CONSENT_GRANTED"
    assert count_rows(sync_engine, "audit_events", "kind = 'consent:granted'") == 1
    parent = get_case(api, case["id"], ANALYST)
    assert parent["terms"]["consents"] == [
        {
            "provider": NL,
            "recipient": "it.guardia-di-finanza",
            "purpose": "criminal_investigation",
            "thread": second["id"],
            "conditions": ["no disclosure to the suspect"],
            "valid_until": None,
        }
    ]


def test_only_the_provider_answers_and_only_once(api: Api, partner: dict[str, str]) -> None:
    case = disclosed(api)
    thread = ask_consent(api, case["id"])
    p = problem(api, thread["id"], "grant_consent", ANALYST, {}, status=403)
    assert "requested side" in p["detail"]
    fire(api, thread["id"], "grant_consent", "nl.officer", {})
    problem(api, thread["id"], "refuse_consent", "nl.officer", {"reasons": "x"}, status=409)


def test_feedback_is_asked_and_given(api: Api, partner: dict[str, str]) -> None:
    case = disclosed(api)
    thread = open_case(
        api,
        "nl.officer",
        workflow="feedback",
        parent_id=case["id"],
        body={"question": "Was the disclosure useful?"},
    )
    assert thread["state"] == "FEEDBACK_REQUESTED"
    assert thread["requested"] == IT
    problem(api, thread["id"], "give_feedback", ANALYST, {})
    given = fire(api, thread["id"], "give_feedback", ANALYST, {"feedback": "Opened a case."})
    assert given["case"]["state"] == "FEEDBACK_GIVEN"


def test_threads_open_only_under_shared_cases_of_their_kind(
    api: Api, partner: dict[str, str]
) -> None:
    draft = open_case(
        api, "nl.officer", workflow="fiu.disclosure", counterpart=IT, request=disclosure()
    )
    r = call(
        api,
        "POST",
        "/v1/cases",
        "nl.officer",
        json={"workflow": "feedback", "parent_id": draft["id"], "body": {}},
    )
    assert r.status_code == 409, r.text
    mla = open_case(api)
    r = call(
        api,
        "POST",
        "/v1/cases",
        "it.officer",
        json={"workflow": "feedback", "parent_id": mla["id"], "body": {}},
    )
    assert r.status_code == 422, r.text


# --- anonymous matching -------------------------------------------------------------------

SUBJECTS = ["Mario Rossi", "ACME Trading Srl"]
HOLDINGS = ["ACME TRADING S.R.L", "Giulia Bianchi"]  # what the Italian FIU holds


def test_anonymous_matching_reveals_only_hit_and_opens_a_draft(
    api: Api, partner: dict[str, str], sync_engine: Engine
) -> None:
    key = new_exchange_key()
    filters = keyed_filters(key, ["Mario Rossi", "ACME Trading Srl"])
    r = call(
        api,
        "POST",
        "/v1/fiu/matches",
        "nl.officer",
        json={
            "counterpart": IT,
            "exchange_id": "nl-it-2026-07",
            "filters": filters,
            "purpose": "money_laundering_analysis",
            "legal_basis": "egmont-principles",
        },
    )
    assert r.status_code == 201, r.text
    match = r.json()
    assert match["filter_count"] == 2
    # The partner reads the filters from its inbox, matches them against its own holdings
    # with the shared key, and answers.
    relay(api.settings)
    content = call(
        api,
        "GET",
        f"/v1/messages/{match['query_message_id']}/content",
        ANALYST,
        params={"justification": "anonymous matching query"},
    ).json()
    received = content["payload"]["body"]["filters"]
    assert content["payload"]["data_categories"] == ["keyed_filter"]
    assert matches(key, received, ["acme trading srl", "Giulia Bianchi"])
    r = call(
        api, "POST", f"/v1/fiu/matches/{match['id']}/answer", "nl.officer", json={"result": "hit"}
    )
    assert r.status_code == 403  # the asker does not answer its own query
    r = call(api, "POST", f"/v1/fiu/matches/{match['id']}/answer", ANALYST, json={"result": "hit"})
    assert r.status_code == 200, r.text
    assert r.json()["match"]["result"] == "hit"
    assert r.json()["match"]["draft_case_id"] is None  # the partner does not see the draft
    again = call(
        api, "POST", f"/v1/fiu/matches/{match['id']}/answer", ANALYST, json={"result": "no_hit"}
    )
    assert again.status_code == 409

    mine = call(api, "GET", f"/v1/fiu/matches/{match['id']}", "nl.officer").json()
    draft = get_case(api, mine["draft_case_id"], "nl.officer")
    assert (draft["workflow"], draft["state"], draft["counterpart"]) == ("fiu.request", "DRAFT", IT)
    assert draft["origin"] == f"match:{match['id']}"
    # The asking FIU completes the draft and submits it as a formal request.
    p = problem(api, draft["id"], "submit", "nl.officer", status=403)
    assert [r["rule"] for r in p["reasons"]] == ["FIU.request-fields"]
    sent = fire(api, draft["id"], "submit", "nl.officer", {"request": fiu_request()})
    assert sent["case"]["state"] == "SUBMITTED"
    # The broker never held a subject, and the audit log holds no filter either.
    with sync_engine.connect() as conn:
        leaves = b"".join(bytes(x) for (x,) in conn.execute(text("SELECT leaf FROM audit_events")))
        tables = ("fiu_match_queries", "fiu_match_answers", "cases")
        dumped = "".join(str(conn.execute(text(f"SELECT * FROM {t}")).all()) for t in tables)
    for subject in SUBJECTS:
        assert subject.encode() not in leaves
        assert subject not in dumped
    assert all(f.encode() not in leaves for f in filters)
    assert count_rows(sync_engine, "audit_events", "kind = 'match:queried'") == 1
    assert count_rows(sync_engine, "audit_events", "kind = 'match:answered'") == 1


def test_no_hit_opens_nothing(api: Api, partner: dict[str, str]) -> None:
    filters = keyed_filters(new_exchange_key(), ["Nobody Known"])
    match = call(
        api,
        "POST",
        "/v1/fiu/matches",
        "nl.officer",
        json={
            "counterpart": IT,
            "exchange_id": "x1",
            "filters": filters,
            "purpose": "money_laundering_analysis",
            "legal_basis": "egmont-principles",
        },
    ).json()
    r = call(
        api, "POST", f"/v1/fiu/matches/{match['id']}/answer", ANALYST, json={"result": "no_hit"}
    )
    assert r.status_code == 200, r.text
    assert (
        call(api, "GET", f"/v1/fiu/matches/{match['id']}", "nl.officer").json()["draft_case_id"]
        is None
    )


@pytest.mark.parametrize(
    ("who", "change", "status"),
    [
        ("nl.officer", {"filters": ["Mario Rossi"]}, 422),  # a subject in clear
        ("nl.officer", {"filters": ["A" * 64]}, 422),  # not a lowercase HMAC digest
        ("nl.officer", {"filters": []}, 422),
        ("nl.officer", {"counterpart": "de.bka"}, 422),  # not an FIU
        ("it.officer", {}, 403),  # a central authority does not match anonymously
    ],
)
def test_a_query_carries_keyed_filters_between_fius_only(
    api: Api, partner: dict[str, str], who: str, change: dict[str, Any], status: int
) -> None:
    body = {
        "counterpart": IT,
        "exchange_id": "x2",
        "filters": keyed_filters(new_exchange_key(), ["Mario Rossi"]),
        "purpose": "money_laundering_analysis",
        "legal_basis": "egmont-principles",
        **change,
    }
    r = call(api, "POST", "/v1/fiu/matches", who, json=body)
    assert r.status_code == status, r.text
