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
