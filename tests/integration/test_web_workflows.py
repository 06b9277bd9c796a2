"""The case pages of the extradition and joint investigation team workflows (UNTOC arts. 16,
19): the page of a case shows its state and offers the events the caller's side may fire,
derived from the tables as for an MLA request."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Api
from tests.integration.test_case_helpers import FakeClock, fire, use_clock
from tests.integration.test_extradition import to_assessment
from tests.integration.test_jit import START, active
from tests.integration.web_helpers import Browser


@pytest.fixture
def browser(api: Api) -> Browser:
    return Browser(api.client)


def _offered(browser: Browser, login: str, case_id: str) -> set[str]:
    browser.client.cookies.clear()
    browser.sign_in(login)
    page = browser.get(f"/cases/{case_id}")
    assert page.status_code == 200, page.text
    return set(re.findall(rf"/cases/{case_id}/events/([a-z_]+)", page.text))


def test_an_extradition_case_page_offers_each_side_its_events(browser: Browser, api: Api) -> None:
    case_id = to_assessment(api)
    requested = _offered(browser, "us.supervisor", case_id)
    assert {"open_consultation", "refuse", "refuse_national", "accept"} <= requested
    assert browser.get(f"/cases/{case_id}/events/refuse_national").status_code == 200
    requesting = _offered(browser, "it.officer", case_id)
    assert "withdraw" in requesting
    assert not requesting & {"refuse", "refuse_national", "accept"}


def test_a_team_page_offers_the_exchange_to_both_parties(browser: Browser, api: Api) -> None:
    use_clock(api, FakeClock(START))
    case_id = active(api)
    fire(api, case_id, "exchange", "it.officer", {"recipient": "de.bka", "text": "Hello."})
    lead = _offered(browser, "it.officer", case_id)
    assert {"exchange", "extend_team", "close_team"} <= lead
    assert "expire_team" not in lead
    assert browser.get(f"/cases/{case_id}/events/exchange").status_code == 200
    # A participant outside the team finds no page.
    browser.client.cookies.clear()
    browser.sign_in("nl.officer")
    assert browser.get(f"/cases/{case_id}").status_code == 404
