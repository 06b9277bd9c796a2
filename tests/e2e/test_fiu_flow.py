"""An FIU request in the browser (domain/FIU.md): the Dutch FIU's officer opens a request to
a second FIU from its home page, meets an error summary and fixes it, sends it; the Italian
FIU's analyst acknowledges, processes and responds (interim, then full, with the purposes the
answer may be used for); the Dutch officer sees the response on the case. Then feedback, a
case of its own under the request: the Italian analyst, who provided the answer, asks for it
from the request's page; the Dutch officer finds it under the request, meets an error
summary, gives it; the Italian analyst sees it given, with its signed envelope. axe-core runs
on every page visited."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.test_case_helpers import register_partner

FIELDS = {
    "#f-facts": "Structured cash deposits at three branches, then wires to Milan.",
    "#f-reasons": "Suspected laundering of proceeds of fraud.",
    "#f-link-to-country": "Beneficiary accounts are held in Italy.",
    "#f-intended-use": "Intelligence for the FIU's analysis; no evidence in court.",
    "#f-purpose": "money_laundering_analysis",
    "#f-legal-basis": "egmont-principles",
    "#f-subjects-0-ref": "s1",
    "#f-subjects-0-identity": "ACME Srl",
    "#f-named-recipients": "nl.fiod",
    "#f-subjects-0-nationality": "Italy",
    "#f-deadline": "2027-03-31T12:00",
    "#f-deadline-reason": "the analysis is due to the prosecutor in April",
}


def _sign_in(page: Any, login: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def _sign_out(page: Any) -> None:
    page.locator("form[action='/sign-out'] button").click()
    page.wait_for_url("**/sign-in?signed_out=1")


def _fire(
    page: Any, case_id: str, button: str, name: str, fill: dict[str, str] | None = None
) -> None:
    page.get_by_role("link", name=button, exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}/events/**")
    for selector, value in (fill or {}).items():
        if selector.startswith("select:"):
            page.select_option(selector.removeprefix("select:"), value)
        else:
            page.fill(selector, value)
    check_page(page, name)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}?done=*")


def test_fiu_request_sent_acknowledged_and_answered(page: Any, api: Api) -> None:
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})

    _sign_in(page, "nl.officer")
    check_page(page, "fiu-home")
    page.get_by_role("link", name="New FIU request").click()
    page.wait_for_url("**/cases/new?workflow=fiu.request")
    page.get_by_label("Requested FIU").select_option("it.fiu")
    check_page(page, "fiu-request-counterpart")
    page.get_by_role("button", name="Continue").click()
    for selector, value in FIELDS.items():
        page.fill(selector, value)
    page.select_option("#f-subjects-0-category", "suspect")
    check_page(page, "fiu-request")

    # A nationality not in its two-letter form: the summary links to the field, the input
    # is kept, nothing is stored.
    page.get_by_role("button", name="Save as draft").click()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    check_page(page, "fiu-request-error")
    assert page.input_value("#f-link-to-country") == FIELDS["#f-link-to-country"]
    page.get_by_role("link", name="Nationality: This is not in the expected form").click()
    assert page.evaluate("document.activeElement.id") == "f-subjects-0-nationality"
    page.fill("#f-subjects-0-nationality", "NL")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_url("**/cases/*?opened=1")
    match = re.search(r"/cases/([0-9a-f-]{36})", page.url)
    assert match
    case_id = match.group(1)
    check_page(page, "fiu-request-draft")
    _fire(page, case_id, "Send", "fiu-event-submit")
    assert page.locator(".tag-state").first.inner_text() == "Submitted"
    check_page(page, "fiu-request-submitted")
    _sign_out(page)

    # The requested FIU finds it waiting on its home page, acknowledges and answers.
    _sign_in(page, "it.analyst")
    page.locator(f'a[href="/cases/{case_id}"]').first.click()
    page.wait_for_url(f"**/cases/{case_id}")
    check_page(page, "fiu-requested-case")
    _fire(page, case_id, "Acknowledge receipt", "fiu-event-acknowledge")
    _fire(page, case_id, "Start processing", "fiu-event-process")
    purposes = {"#f-permitted-purposes": "money_laundering_analysis"}
    _fire(
        page,
        case_id,
        "Respond",
        "fiu-event-respond-interim",
        {"select:#f-kind": "interim", "#f-summary": "Accounts found; more follows.", **purposes},
    )
    assert page.locator(".tag-state").first.inner_text() == "Responded"
    _fire(
        page,
        case_id,
        "Respond",
        "fiu-event-respond-full",
        {
            "select:#f-kind": "full",
            "#f-summary": "Two accounts at Banca Uno, statements attached.",
            "#f-permitted-recipients": "nl.fiod",
            **purposes,
        },
    )
    _sign_out(page)

    # The requesting FIU sees the response: the state, the two signed response events.
    _sign_in(page, "nl.officer")
    page.goto(f"/cases/{case_id}")
    assert page.locator(".tag-state").first.inner_text() == "Responded"
    assert page.locator("#response-kind").inner_text().startswith("Full: the request is answered")
    assert page.get_by_role("link", name="Close", exact=True).is_visible()
    check_page(page, "fiu-request-responded")
    _sign_out(page)

    # The providing FIU asks what use was made of its answer: a feedback case under it.
    _sign_in(page, "it.analyst")
    page.goto(f"/cases/{case_id}")
    page.get_by_role("link", name="Ask for feedback", exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}/threads/feedback")
    page.fill("#f-question", "Did the two accounts help your analysis?")
    check_page(page, "fiu-feedback-ask")
    page.get_by_role("button", name="Ask for feedback", exact=True).click()
    page.wait_for_url("**/cases/*?done=request_feedback")
    match = re.search(r"/cases/([0-9a-f-]{36})", page.url)
    assert match
    feedback_id = match.group(1)
    assert feedback_id != case_id
    assert page.locator(".tag-state").first.inner_text() == "Feedback requested"
    assert page.locator("#parent-case").get_attribute("href") == f"/cases/{case_id}"
    check_page(page, "fiu-feedback-requested")
    _sign_out(page)

    # The requesting FIU finds it under its request and gives feedback from there.
    _sign_in(page, "nl.officer")
    page.goto(f"/cases/{case_id}")
    threads = page.locator("#threads")
    assert threads.get_by_role("link", name=feedback_id).is_visible()
    assert page.get_by_role("link", name="Ask for feedback", exact=True).count() == 0
    check_page(page, "fiu-feedback-parent")
    threads.get_by_role("link", name="Give feedback", exact=True).click()
    page.wait_for_url(f"**/cases/{feedback_id}/events/give_feedback")
    page.get_by_role("button", name="Give feedback", exact=True).click()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    check_page(page, "fiu-feedback-error")
    page.fill("#f-feedback", "The accounts opened a domestic investigation of ACME Srl.")
    check_page(page, "fiu-feedback")
    page.get_by_role("button", name="Give feedback", exact=True).click()
    page.wait_for_url(f"**/cases/{feedback_id}?done=give_feedback")
    assert page.locator(".tag-state").first.inner_text() == "Feedback given"
    check_page(page, "fiu-feedback-given")
    _sign_out(page)

    # The providing FIU sees the feedback given, and reads it in its signed envelope.
    _sign_in(page, "it.analyst")
    page.goto(f"/cases/{case_id}")
    threads = page.locator("#threads")
    assert "Feedback given" in threads.inner_text()
    check_page(page, "fiu-feedback-seen")
    threads.get_by_role("link", name=feedback_id).click()
    page.wait_for_url(f"**/cases/{feedback_id}")
    assert page.locator(".tag-state").first.inner_text() == "Feedback given"
    given = page.locator("table.timeline tr", has_text="Give feedback")
    assert given.get_by_role("link", name="envelope").is_visible()  # the signed feedback
    check_page(page, "fiu-feedback-read")
