"""Granting a consent in the web app, at both doors (UNTOC art. 18(19); Egmont Principles):
the consent thread's grant form generated from ``GrantConsent`` and the message consent's
page both offer its conditions (P9, 18(26)) and its end; an end in the past is refused."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.integration.test_case_helpers import fire, open_case, register_partner
from tests.integration.test_fiu import ANALYST, IT, disclosure
from tests.integration.test_forward import FIU_DISCLOSURE, delivered
from tests.integration.test_web_onward import PURPOSE, officer, provider
from tests.integration.web_helpers import Browser

__all__ = ["officer", "provider"]  # the fixtures, shared with test_web_onward


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


def test_the_message_door_grant_sets_conditions_and_an_end(
    officer: Browser, provider: Browser, api: Api
) -> None:
    original = delivered(api, "nl.officer", FIU_DISCLOSURE)
    asked = api.post(
        f"/v1/messages/{original}/consent-requests",
        as_="it.officer",
        json={"recipient": "de.bka", "purpose": PURPOSE, "reasons": "joint investigation"},
    )
    assert asked.status_code == 201, asked.text
    consent_page = f"/consents/{asked.json()['id']}"
    form = provider.get(consent_page).text
    assert 'name="conditions"' in form
    assert 'name="valid_until"' in form
    grant = consent_page + "/grant"
    condition = "no disclosure to the suspect"
    past = provider.submit(
        consent_page, grant, {"conditions": condition, "valid_until": "2020-01-01T10:00"}
    )
    assert past.status_code == 422, past.text
    assert '<a href="#grant-valid_until">Enter a date and time in the future</a>' in past.text
    assert f">{condition}</textarea>" in past.text  # the input is kept
    garbled = provider.submit(consent_page, grant, {"valid_until": "next week"})
    assert garbled.status_code == 422
    assert 'href="#grant-valid_until"' in garbled.text
    assert "Enter a date and time" in garbled.text
    assert (
        api.get(consent_page.replace("/consents", "/v1/consents"), as_="it.officer").json()[
            "status"
        ]
        == "requested"
    )
    r = provider.submit(
        consent_page, grant, {"conditions": condition, "valid_until": "2099-01-01T10:00"}
    )
    assert r.status_code == 303, r.text
    seen = officer.get(consent_page).text
    assert f"<li>{condition}</li>" in seen
    assert "Valid until" in seen
    read = api.get(f"/v1/consents/{asked.json()['id']}", as_="it.officer").json()
    assert read["conditions"] == [condition]
    assert read["valid_until"].startswith("2099-01-01")
