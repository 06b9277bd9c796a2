"""Onward use of FIU material through the HTTP API (issue 14): P18's presumption covers the
response to the request that named the recipients (FIU.md "Prior consent"; Egmont
Principles; FATF R.40 INR), and a consent is one record whichever door it came through: a
message consent request (``/v1/messages/{id}/consent-requests``) or a case consent thread
(``consent`` workflow, UNTOC art. 18(19)). Either permits the very same forward, and the
conditions of the consent travel with it as restrictions (P9, UNTOC art. 18(26))."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from broker.client import sign
from tests.conftest import Api
from tests.integration.messaging_helpers import payload, relay
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    call,
    event_payload,
    fire,
    open_case,
)
from tests.integration.test_exculpatory import evidence_received
from tests.integration.test_fiu import ANALYST, IT, NL, disclosure, fiu_request, partner
from tests.integration.test_forward import (
    FIU_DISCLOSURE,
    delivered,
    forward,
    inner,
    problem,
    register,
)

__all__ = ["partner"]  # the fixture, shared with test_fiu

PURPOSE = "money_laundering_analysis"


def rules(response: Any) -> list[str]:
    body = problem(response, 403, "policy-denied")
    return sorted(r["rule"] for r in body["reasons"])


def responded(api: Api, **request: Any) -> tuple[dict[str, Any], str]:
    """nl.fiu asks it.fiu, naming nl.fiod; it.fiu answers in full. Returns the case and the
    id of the response message, delivered to nl.fiu."""
    case = open_case(
        api, "nl.officer", workflow="fiu.request", counterpart=IT, request=fiu_request(**request)
    )
    fire(api, case["id"], "submit", "nl.officer")
    fire(api, case["id"], "acknowledge", ANALYST)
    fire(api, case["id"], "process", ANALYST)
    answer = fire(
        api,
        case["id"],
        "respond",
        ANALYST,
        {"kind": "full", "summary": "Two accounts", "permitted_purposes": [PURPOSE]},
    )
    relay(api.settings)
    return case, str(answer["event"]["message_id"])


# --- P18: the presumption covers the response -----------------------------------------------


def test_the_request_names_recipients_for_the_response_not_for_itself(
    api: Api, partner: dict[str, str]
) -> None:
    case = open_case(
        api, "nl.officer", workflow="fiu.request", counterpart=IT, request=fiu_request()
    )
    sent = fire(api, case["id"], "submit", "nl.officer")
    # The request is nl.fiu's own material: naming nl.fiod lets it.fiu send nothing on.
    assert event_payload(api, sent, "nl.officer").get("permitted_recipients", []) == []
    fire(api, case["id"], "acknowledge", ANALYST)
    fire(api, case["id"], "process", ANALYST)
    body = {"kind": "partial", "permitted_purposes": [PURPOSE], "permitted_recipients": ["nl.om"]}
    answer = fire(api, case["id"], "respond", ANALYST, body)
    # The response, it.fiu's material, carries them beside what it.fiu itself permits.
    assert event_payload(api, answer, ANALYST)["permitted_recipients"] == ["nl.om", "nl.fiod"]


def test_the_response_goes_on_to_a_recipient_the_request_named(
    api: Api, partner: dict[str, str]
) -> None:
    _, response = responded(api)
    register(api, "nl.fiod")
    r = forward(api, response, as_="nl.officer", recipient="nl.fiod")
    assert r.status_code == 202, r.text
    sent = inner(api, r.json(), as_="nl.officer")
    assert (sent["forwarded_from"], sent["recipient"]) == (response, "nl.fiod")


def test_the_response_to_anyone_not_named_needs_the_providers_consent(
    api: Api, partner: dict[str, str]
) -> None:
    _, response = responded(api)
    register(api, "nl.politie")
    r = forward(api, response, as_="nl.officer", recipient="nl.politie")
    assert rules(r) == ["P18.named-recipients"]
    assert [(o["kind"], o["value"]) for o in r.json()["obligations"]] == [("require_consent", IT)]


def test_a_request_naming_no_one_presumes_no_one(api: Api, partner: dict[str, str]) -> None:
    _, response = responded(api, named_recipients=[])
    register(api, "nl.fiod")
    assert rules(forward(api, response, as_="nl.officer", recipient="nl.fiod")) == [
        "P18.named-recipients"
    ]


# --- one consent, two doors: the same forward ------------------------------------------------

GDF = "it.guardia-di-finanza"
OTHER_PURPOSE = "criminal_investigation"
CONDITION = "no disclosure to the suspect"


def disclosed(api: Api) -> str:
    """nl.fiu discloses to it.fiu for money-laundering analysis, naming it.fiu alone; returns
    the id of the disclosure message, delivered to it.fiu."""
    case = open_case(
        api, "nl.officer", workflow="fiu.disclosure", counterpart=IT, request=disclosure()
    )
    sent = fire(api, case["id"], "submit", "nl.officer")
    relay(api.settings)
    return str(sent["event"]["message_id"])


def case_of_message(api: Api, message_id: str) -> str:
    """The disclosure case whose submit event carried ``message_id``, as it.fiu lists it."""
    for case in call(api, "GET", "/v1/cases", ANALYST).json()["items"]:
        if case["workflow"] == "fiu.disclosure":
            return str(case["id"])
    raise AssertionError(f"no case for {message_id}")


def onward(api: Api, message_id: str, **draft: Any) -> Any:
    """it.fiu forwards ``message_id`` to the Guardia di Finanza for a criminal investigation:
    a recipient and a purpose the disclosure did not name."""
    draft = {"recipient": GDF, "purpose": OTHER_PURPOSE, **draft}
    return call(api, "POST", f"/v1/messages/{message_id}/forward", ANALYST, json={"draft": draft})


def sent_by_analyst(api: Api, answer: dict[str, Any]) -> dict[str, Any]:
    r = call(
        api,
        "GET",
        f"/v1/messages/{answer['id']}/content",
        ANALYST,
        params={"justification": "checking the forward we sent"},
    )
    assert r.status_code == 200, r.text
    decoded: dict[str, Any] = json.loads(base64.b64decode(r.json()["envelope"]["payload"]))
    return decoded


def test_without_a_consent_the_forward_is_refused(api: Api, partner: dict[str, str]) -> None:
    message = disclosed(api)
    register(api, GDF)
    r = onward(api, message)
    assert rules(r) == ["P18.named-recipients", "P4.purpose-lock"]
    assert {(o["kind"], o["value"]) for o in r.json()["obligations"]} == {("require_consent", NL)}


def test_a_consent_through_the_message_door_permits_the_forward(
    api: Api, partner: dict[str, str]
) -> None:
    message = disclosed(api)
    register(api, GDF)
    asked = call(
        api,
        "POST",
        f"/v1/messages/{message}/consent-requests",
        ANALYST,
        json={"recipient": GDF, "purpose": OTHER_PURPOSE, "reasons": "tax fraud suspected"},
    )
    assert asked.status_code == 201, asked.text
    granted = api.post(
        f"/v1/consents/{asked.json()['id']}/grant",
        as_="nl.officer",
        json={"conditions": [CONDITION]},
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["conditions"] == [CONDITION]
    r = onward(api, message)
    assert r.status_code == 202, r.text
    # The consent's condition travels with the forward as a restriction (P9).
    assert CONDITION in sent_by_analyst(api, r.json())["restrictions"]


def test_a_consent_through_the_case_door_permits_the_same_forward(
    api: Api, partner: dict[str, str]
) -> None:
    message = disclosed(api)
    register(api, GDF)
    thread = open_case(
        api,
        ANALYST,
        workflow="consent",
        parent_id=case_of_message(api, message),
        body={"recipient": GDF, "purpose": OTHER_PURPOSE},
    )
    fire(api, thread["id"], "grant_consent", "nl.officer", {"conditions": [CONDITION]})
    r = onward(api, message)
    assert r.status_code == 202, r.text
    assert CONDITION in sent_by_analyst(api, r.json())["restrictions"]
    # It widens exactly its recipient and purpose: another purpose is still refused.
    assert rules(onward(api, message, purpose="tax_investigation")) == [
        "P18.named-recipients",
        "P4.purpose-lock",
    ]


def test_a_consent_on_record_is_not_asked_again_at_the_other_door(
    api: Api, partner: dict[str, str]
) -> None:
    message = disclosed(api)
    thread = open_case(
        api,
        ANALYST,
        workflow="consent",
        parent_id=case_of_message(api, message),
        body={"recipient": GDF, "purpose": OTHER_PURPOSE},
    )
    fire(api, thread["id"], "grant_consent", "nl.officer", {})
    asked = call(
        api,
        "POST",
        f"/v1/messages/{message}/consent-requests",
        ANALYST,
        json={"recipient": GDF, "purpose": OTHER_PURPOSE, "reasons": "tax fraud suspected"},
    )
    assert problem(asked, 409, "conflict")["consent_id"] == thread["id"]


def test_a_consent_by_message_is_not_asked_again_through_a_case_thread(
    api: Api, partner: dict[str, str]
) -> None:
    # The other way round: the case door's guard reads the same consents on record.
    message = disclosed(api)
    asked = call(
        api,
        "POST",
        f"/v1/messages/{message}/consent-requests",
        ANALYST,
        json={"recipient": GDF, "purpose": OTHER_PURPOSE, "reasons": "tax fraud suspected"},
    )
    assert asked.status_code == 201, asked.text
    consent_id = asked.json()["id"]
    parent = case_of_message(api, message)
    body = {"recipient": GDF, "purpose": OTHER_PURPOSE}
    # Asked but not yet granted: nothing is on record, and a thread may be opened.
    pending = call(
        api,
        "POST",
        "/v1/cases",
        ANALYST,
        json={"workflow": "consent", "parent_id": parent, "body": body},
    )
    assert pending.status_code == 201, pending.text
    granted = api.post(f"/v1/consents/{consent_id}/grant", as_="nl.officer", json={})
    assert granted.status_code == 200, granted.text
    again = call(
        api,
        "POST",
        "/v1/cases",
        ANALYST,
        json={"workflow": "consent", "parent_id": parent, "body": body},
    )
    assert again.status_code == 409, again.text
    assert again.json()["guard"] == "consent_needed"
    assert consent_id in again.json()["detail"]
    assert "asked by message" in again.json()["detail"]
    # Another purpose is still asked.
    other = {"recipient": GDF, "purpose": "tax_investigation"}
    open_case(api, ANALYST, workflow="consent", parent_id=parent, body=other)


# --- conditions and validity ------------------------------------------------------------------


def ask_by_message(api: Api, message: str) -> str:
    asked = call(
        api,
        "POST",
        f"/v1/messages/{message}/consent-requests",
        ANALYST,
        json={"recipient": GDF, "purpose": OTHER_PURPOSE, "reasons": "tax fraud suspected"},
    )
    assert asked.status_code == 201, asked.text
    return str(asked.json()["id"])


def test_a_grant_ends_in_the_future_and_a_refusal_sets_no_terms(
    api: Api, partner: dict[str, str]
) -> None:
    message = disclosed(api)
    register(api, GDF)
    consent = ask_by_message(api, message)
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    grant = api.post(f"/v1/consents/{consent}/grant", as_="nl.officer", json={"valid_until": past})
    assert problem(grant, 422, "schema-violation")["field"] == "valid_until"
    refusal = {"reasons": "the source would be exposed", "conditions": [CONDITION]}
    refused = api.post(f"/v1/consents/{consent}/refuse", as_="nl.officer", json=refusal)
    assert problem(refused, 422, "schema-violation")["field"] == "conditions"
    # Nothing was half-stored: the consent is still asked, and the forward still refused.
    assert api.get(f"/v1/consents/{consent}", as_="nl.officer").json()["status"] == "requested"
    assert rules(onward(api, message)) == ["P18.named-recipients", "P4.purpose-lock"]
    # The case door refuses the same end (a guard of grant_consent).
    thread = open_case(
        api,
        ANALYST,
        workflow="consent",
        parent_id=case_of_message(api, message),
        body={"recipient": GDF, "purpose": OTHER_PURPOSE},
    )
    failed = fire(
        api, thread["id"], "grant_consent", "nl.officer", {"valid_until": past}, expect=422
    )
    assert failed["guard"] == "valid_until_future"


@pytest.mark.parametrize("door", ["message", "case"])
def test_a_consent_no_longer_counts_after_its_end(
    api: Api, partner: dict[str, str], monkeypatch: pytest.MonkeyPatch, door: str
) -> None:
    message = disclosed(api)
    register(api, GDF)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    if door == "message":
        consent = ask_by_message(api, message)
        r = api.post(
            f"/v1/consents/{consent}/grant",
            as_="nl.officer",
            json={"valid_until": until.isoformat()},
        )
        assert r.status_code == 200, r.text
        assert r.json()["valid_until"] is not None
    else:
        thread = open_case(
            api,
            ANALYST,
            workflow="consent",
            parent_id=case_of_message(api, message),
            body={"recipient": GDF, "purpose": OTHER_PURPOSE},
        )
        fire(api, thread["id"], "grant_consent", "nl.officer", {"valid_until": until.isoformat()})
    assert onward(api, message).status_code == 202
    later = until + dt.timedelta(minutes=1)
    monkeypatch.setattr("broker.consents.views.utcnow", lambda: later)
    assert rules(onward(api, message)) == ["P18.named-recipients", "P4.purpose-lock"]


def test_a_self_signed_forward_carries_the_consents_conditions(api: Api) -> None:
    # nl.fiu discloses to de.bka; de.bka's system asks, nl.fiu grants on a condition, and
    # de.bka forwards with its own key.
    original = delivered(api, "nl.officer", {**FIU_DISCLOSURE, "recipient": "de.bka"})
    register(api, GDF)
    asked = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="de.system",
        json={"recipient": GDF, "purpose": FIU_DISCLOSURE["purpose"], "reasons": "joint case"},
    )
    assert asked.status_code == 201, asked.text
    granted = api.post(
        f"/v1/consents/{asked.json()['id']}/grant",
        as_="nl.officer",
        json={"conditions": [CONDITION]},
    )
    assert granted.status_code == 200, granted.text
    key = api.world.keys["de.bka"]

    def signed(**over: Any) -> dict[str, Any]:
        p = payload(key, recipient=GDF, type="fiu.disclosure", forwarded_from=original, **over)
        p["purpose"] = FIU_DISCLOSURE["purpose"]
        return sign(key, p)

    url = f"/v1/messages/{original}/forward"
    body = problem(api.post(url, as_="de.system", json=signed()), 422, "schema-violation")
    assert (body["field"], body["missing"]) == ("payload.restrictions", [CONDITION])
    r = api.post(url, as_="de.system", json=signed(restrictions=[CONDITION]))
    assert r.status_code == 202, r.text


# --- the case door under an FIU request and under an MLA request ---------------------------


def test_a_consent_thread_under_the_request_lets_the_response_go_further(
    api: Api, partner: dict[str, str]
) -> None:
    case, response = responded(api)
    register(api, "nl.politie")
    assert rules(forward(api, response, as_="nl.officer", recipient="nl.politie")) == [
        "P18.named-recipients"
    ]
    thread = open_case(
        api,
        "nl.officer",
        workflow="consent",
        parent_id=case["id"],
        body={"recipient": "nl.politie", "purpose": PURPOSE},
    )
    assert thread["timeline"][0]["event"] == "request_consent"
    fire(api, thread["id"], "grant_consent", ANALYST, {"conditions": [CONDITION]})
    r = forward(api, response, as_="nl.officer", recipient="nl.politie")
    assert r.status_code == 202, r.text
    assert CONDITION in inner(api, r.json(), as_="nl.officer")["restrictions"]


def test_an_18_19_use_extension_lifts_the_purpose_lock(api: Api) -> None:
    case_id, message_id = evidence_received(api)

    def use_in_another_proceeding() -> Any:
        draft = {"recipient": "de.bka", "purpose": "prosecution"}
        return api.post(f"/v1/messages/{message_id}/forward", as_=DRAFTER, json={"draft": draft})

    assert "P4.purpose-lock" in rules(use_in_another_proceeding())
    thread = open_case(
        api,
        DRAFTER,
        workflow="consent",
        parent_id=case_id,
        body={"recipient": "de.bka", "purpose": "prosecution"},
    )
    assert thread["timeline"][0]["event"] == "use_extension_request"
    fire(api, thread["id"], "grant_consent", HANDLER, {})
    r = use_in_another_proceeding()
    assert r.status_code == 202, r.text


def test_a_consent_thread_is_not_asked_twice_for_what_it_granted(
    api: Api, partner: dict[str, str]
) -> None:
    message = disclosed(api)
    parent = case_of_message(api, message)
    body = {"recipient": GDF, "purpose": OTHER_PURPOSE}
    thread = open_case(api, ANALYST, workflow="consent", parent_id=parent, body=body)
    fire(api, thread["id"], "grant_consent", "nl.officer", {})
    again = call(
        api,
        "POST",
        "/v1/cases",
        ANALYST,
        json={"workflow": "consent", "parent_id": parent, "body": body},
    )
    assert again.status_code == 409, again.text
    assert again.json()["guard"] == "consent_needed"
    assert thread["id"] in again.json()["detail"]
    # Another purpose is still asked.
    other = {"recipient": GDF, "purpose": "tax_investigation"}
    open_case(api, ANALYST, workflow="consent", parent_id=parent, body=other)
