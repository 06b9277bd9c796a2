"""Granting a consent thread in the web app (UNTOC art. 18(19); Egmont Principles): the
grant form generated from ``GrantConsent`` offers its conditions (P9, 18(26)) and its end,
and an end in the past is refused with the guard that says so."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.integration.test_case_helpers import fire, open_case, register_partner
from tests.integration.test_fiu import ANALYST, IT, disclosure
from tests.integration.web_helpers import Browser


@pytest.fixture
def browser(api: Api) -> Browser:
    register_partner(api, IT, "fiu", {ANALYST: "officer", "it.fiu-head": "supervisor"})
    return Browser(api.client)


def _thread(api: Api) -> str:
    case = open_case(
        api, "nl.officer", workflow="fiu.disclosure", counterpart=IT, request=disclosure()
    )
    fire(api, case["id"], "submit", "nl.officer")
    body = {"recipient": "it.guardia-di-finanza", "purpose": "criminal_investigation"}
    thread = open_case(api, ANALYST, workflow="consent", parent_id=case["id"], body=body)
    return str(thread["id"])


def test_the_grant_form_offers_conditions_and_an_end(api: Api, browser: Browser) -> None:
    thread = _thread(api)
    browser.sign_in("nl.officer")
    page = f"/cases/{thread}/events/grant_consent"
    form = browser.get(page)
    assert form.status_code == 200, form.text
    assert 'name="conditions"' in form.text
    assert 'name="valid_until"' in form.text
    assert "Valid until" in form.text
    r = browser.submit(page, page, {"valid_until": "2020-01-01T10:00"})
    assert r.status_code == 422, r.text
    assert "valid_until_future" in r.text
    assert api.get(f"/v1/cases/{thread}", as_="nl.officer").json()["state"] == "CONSENT_REQUESTED"
    done = browser.submit(
        page,
        page,
        {"conditions": "no disclosure to the suspect", "valid_until": "2099-01-01T10:00"},
    )
    assert done.status_code == 303, done.text
    assert api.get(f"/v1/cases/{thread}", as_="nl.officer").json()["state"] == "CONSENT_GRANTED"
