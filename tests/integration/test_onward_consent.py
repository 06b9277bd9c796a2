"""Onward use of FIU material through the HTTP API (issue 14): P18's presumption covers the
response to the request that named the recipients (FIU.md "Prior consent"; Egmont
Principles; FATF R.40 INR), and a consent is one record whichever door it came through: a
message consent request (``/v1/messages/{id}/consent-requests``) or a case consent thread
(``consent`` workflow, UNTOC art. 18(19)). Either permits the very same forward, and the
conditions of the consent travel with it as restrictions (P9, UNTOC art. 18(26))."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import event_payload, fire, open_case
from tests.integration.test_fiu import ANALYST, IT, fiu_request, partner
from tests.integration.test_forward import forward, inner, problem, register

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
