"""FIU requests as cases in the web app (domain/FIU.md): the Dutch FIU's analyst opens a
request to the Italian FIU from a form generated from ``FiuRequest``, sends it, the Italian
FIU acknowledges, processes and responds (interim, then full, with the permitted purposes),
and the requesting side sees the response on its case page."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Api
from tests.integration.test_case_helpers import register_partner
from tests.integration.web_helpers import Browser

IT = "it.fiu"
ANALYST = "it.analyst"


@pytest.fixture
def browser(api: Api) -> Browser:
    register_partner(api, IT, "fiu", {ANALYST: "officer", "it.fiu-head": "supervisor"})
    return Browser(api.client)


def _request_form(**over: str) -> dict[str, str]:
    form = {
        "workflow": "fiu.request",
        "counterpart": IT,
        "facts": "Structured cash deposits at three branches, then wires to Milan.",
        "reasons": "Suspected laundering of proceeds of fraud.",
        "link_to_country": "Beneficiary accounts are held in Italy.",
        "intended_use": "Intelligence for the FIU's analysis; no evidence in court.",
        "purpose": "money_laundering_analysis",
        "legal_basis": "egmont-principles",
        "subjects.0.ref": "s1",
        "subjects.0.category": "suspect",
        "subjects.0.identity": "ACME Srl",
        "named_recipients": "nl.fiod",
    }
    form.update(over)
    return form


def _opened(browser: Browser) -> str:
    r = browser.submit("/cases/new?workflow=fiu.request", "/cases/new", _request_form())
    assert r.status_code == 303, r.text
    match = re.match(r"/cases/([0-9a-f-]{36})\?opened=1", r.headers["location"])
    assert match, r.headers["location"]
    return match.group(1)


def _fire(browser: Browser, case_id: str, event: str, data: dict[str, str] | None = None) -> None:
    page = f"/cases/{case_id}/events/{event}"
    r = browser.submit(page, page, data)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/cases/{case_id}?done={event}"


def test_an_fiu_finds_the_new_request_on_cases_and_home(browser: Browser) -> None:
    browser.sign_in("nl.officer")
    for path in ("/cases", "/"):
        page = browser.get(path)
        assert page.status_code == 200
        assert 'href="/cases/new?workflow=fiu.request"' in page.text
        assert 'href="/cases/new?workflow=mla.request"' not in page.text


def test_an_mla_officer_is_offered_the_mla_request_only(browser: Browser) -> None:
    browser.sign_in("it.officer")
    cases = browser.get("/cases").text
    assert 'href="/cases/new?workflow=mla.request"' in cases
    assert "workflow=fiu.request" not in cases
    assert "workflow=fiu.request" not in browser.get("/").text


def test_the_fiu_request_form_offers_fius_and_cites_r40(browser: Browser) -> None:
    browser.sign_in("nl.officer")
    chooser = browser.get("/cases/new?workflow=fiu.request")
    assert chooser.status_code == 200
    assert "New FIU request" in chooser.text
    assert "Requested FIU" in chooser.text
    offered = re.findall(r'<option value="([^"]+)"', chooser.text)
    assert offered == [IT]  # the FIUs on the node but this one: no police, no central authority
    form = browser.get(f"/cases/new?workflow=fiu.request&counterpart={IT}").text
    for name in ("facts", "reasons", "link_to_country", "intended_use"):
        field = re.search(rf'<label for="f-{name.replace("_", "-")}">.*?</p>', form, re.S)
        assert field, name
        assert "FATF R.40 INR" in field.group(0)
    assert 'name="subjects.0.category"' in form
    assert 'name="named_recipients"' in form
    assert "Languages it accepts" not in form  # an MLA matter, not an FIU one


def test_a_missing_counterpart_keeps_the_input(browser: Browser) -> None:
    browser.sign_in("nl.officer")
    r = browser.submit(
        "/cases/new?workflow=fiu.request", "/cases/new", _request_form(counterpart="")
    )
    assert r.status_code == 422
    assert 'href="#f-counterpart"' in r.text
    assert "New FIU request" in r.text


def test_request_sent_acknowledged_and_answered_in_the_browser(api: Api, browser: Browser) -> None:
    browser.sign_in("nl.officer")
    case_id = _opened(browser)
    draft = browser.get(f"/cases/{case_id}").text
    assert f'href="/cases/{case_id}/events/submit"' in draft
    _fire(browser, case_id, "submit")
    assert "Submitted" in browser.get(f"/cases/{case_id}").text

    browser.client.cookies.clear()
    browser.sign_in(ANALYST)
    assert case_id in browser.get("/").text  # waiting for the requested FIU
    _fire(browser, case_id, "acknowledge")
    _fire(browser, case_id, "process")
    respond = browser.get(f"/cases/{case_id}/events/respond").text
    assert 'name="kind"' in respond
    assert 'name="permitted_purposes"' in respond
    # The purposes are required: the form says so and keeps the input.
    page = f"/cases/{case_id}/events/respond"
    r = browser.submit(page, page, {"kind": "interim", "summary": "More next week"})
    assert r.status_code == 422
    assert 'href="#f-permitted-purposes"' in r.text
    assert "More next week" in r.text
    purposes = {"permitted_purposes": "money_laundering_analysis"}
    _fire(browser, case_id, "respond", {"kind": "interim", **purposes})
    _fire(browser, case_id, "respond", {"kind": "full", "summary": "Two accounts", **purposes})
    # Answered in full: the case page no longer offers a further response.
    assert f'href="/cases/{case_id}/events/respond"' not in browser.get(f"/cases/{case_id}").text

    browser.client.cookies.clear()
    browser.sign_in("nl.officer")
    case = browser.get(f"/cases/{case_id}").text
    assert "Responded" in case
    assert "Full: the request is answered" in case
    assert "Language and channel" not in case
    assert f"/cases/{case_id}/letter" not in case  # a letter of request is MLA's (18(15))
    assert f'href="/cases/{case_id}/events/close"' in case
    read = api.get(f"/v1/cases/{case_id}", as_="nl.officer").json()
    assert read["state"] == "RESPONDED"
    assert read["response_kind"] == "full"


# --- feedback: a thread of its own under the request -----------------------------------------


def _answered(browser: Browser) -> str:
    """An FIU request the Italian FIU answered in full; it.analyst is signed in."""
    browser.sign_in("nl.officer")
    case_id = _opened(browser)
    _fire(browser, case_id, "submit")
    browser.client.cookies.clear()
    browser.sign_in(ANALYST)
    _fire(browser, case_id, "acknowledge")
    _fire(browser, case_id, "process")
    purposes = {"permitted_purposes": "money_laundering_analysis"}
    _fire(browser, case_id, "respond", {"kind": "full", "summary": "Two accounts", **purposes})
    return case_id


def test_feedback_is_asked_by_the_provider_and_given_by_the_requester(
    api: Api, browser: Browser
) -> None:
    case_id = _answered(browser)
    parent = browser.get(f"/cases/{case_id}").text
    assert f'href="/cases/{case_id}/threads/feedback"' in parent  # it provided the response
    form = browser.get(f"/cases/{case_id}/threads/feedback")
    assert form.status_code == 200
    assert 'name="question"' in form.text
    page = f"/cases/{case_id}/threads/feedback"
    r = browser.submit(page, page, {"question": "Did the accounts help your analysis?"})
    assert r.status_code == 303, r.text
    match = re.match(r"/cases/([0-9a-f-]{36})\?done=request_feedback", r.headers["location"])
    assert match, r.headers["location"]
    child = match.group(1)
    assert child != case_id
    thread = browser.get(f"/cases/{child}").text
    assert "Feedback requested" in thread
    assert f'href="/cases/{case_id}"' in thread  # the way back to the parent
    assert f'href="/cases/{child}/events/give_feedback"' not in thread  # not the asker's to give

    # The requesting FIU sees the thread on its request, and gives feedback from there.
    browser.client.cookies.clear()
    browser.sign_in("nl.officer")
    parent = browser.get(f"/cases/{case_id}").text
    assert "Related cases" in parent
    assert f'href="/cases/{child}"' in parent
    assert f'href="/cases/{child}/events/give_feedback"' in parent
    assert f"/cases/{case_id}/threads/feedback" not in parent  # it received, it did not provide
    assert browser.get(f"/cases/{case_id}/threads/feedback").status_code == 404
    give = f"/cases/{child}/events/give_feedback"
    r = browser.submit(give, give, {"feedback": ""})
    assert r.status_code == 422
    assert 'class="error-summary"' in r.text
    assert 'href="#f-feedback"' in r.text
    _fire(browser, child, "give_feedback", {"feedback": "Used to open a domestic case."})

    browser.client.cookies.clear()
    browser.sign_in(ANALYST)
    parent = browser.get(f"/cases/{case_id}").text
    assert f'href="/cases/{child}"' in parent
    assert "Feedback given" in parent
    thread = browser.get(f"/cases/{child}").text
    assert "Feedback given" in thread
    read = api.get(f"/v1/cases/{case_id}", as_="nl.officer").json()
    assert [(t["id"], t["workflow"], t["state"]) for t in read["threads"]] == [
        (child, "feedback", "FEEDBACK_GIVEN")
    ]


def test_feedback_is_not_offered_before_anything_was_provided(browser: Browser) -> None:
    browser.sign_in("nl.officer")
    case_id = _opened(browser)
    assert "/threads/feedback" not in browser.get(f"/cases/{case_id}").text
    assert browser.get(f"/cases/{case_id}/threads/feedback").status_code == 404
    _fire(browser, case_id, "submit")
    browser.client.cookies.clear()
    browser.sign_in(ANALYST)
    _fire(browser, case_id, "acknowledge")
    assert "/threads/feedback" not in browser.get(f"/cases/{case_id}").text
    page = f"/cases/{case_id}/threads/feedback"
    assert browser.get(page).status_code == 404


def test_an_outsider_neither_sees_nor_opens_the_feedback(browser: Browser) -> None:
    case_id = _answered(browser)
    browser.client.cookies.clear()
    browser.sign_in("it.officer")  # the Italian MLA authority: not a party to the request
    assert browser.get(f"/cases/{case_id}").status_code == 404
    assert browser.get(f"/cases/{case_id}/threads/feedback").status_code == 404


def test_a_thread_error_is_an_error_summary_with_the_input_kept(browser: Browser) -> None:
    case_id = _answered(browser)
    page = f"/cases/{case_id}/threads/feedback"
    r = browser.submit(page, page, {"question": "x" * 20_001})
    assert r.status_code == 422
    assert 'class="error-summary"' in r.text
    assert 'href="#f-question"' in r.text
