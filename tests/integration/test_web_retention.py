"""The retention review in the web app (P17; LED art. 5): a supervisor of a holding
participant sees when the review opens, extends an open one with reasons on the message or
case page (the same services and leaf as the API), gets an error summary for a bad date or
short reasons with the input kept, and finds the messages due for review on the home page."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import Engine

from tests.conftest import Api
from tests.integration.test_case_helpers import (
    DRAFTER,
    FakeClock,
    fire,
    get_case,
    set_clocks,
    to_execution,
    use_clock,
)
from tests.integration.test_retention import at, send
from tests.integration.test_retention_review import REASONS, _due_in, _leaves
from tests.integration.web_helpers import Browser


def _browser(api: Api, login: str) -> Browser:
    api.client.cookies.clear()
    browser = Browser(api.client)
    assert browser.sign_in(login).status_code == 303
    return browser


def test_a_supervisor_extends_a_message_on_its_page(api: Api, sync_engine: Engine) -> None:
    mid = send(api)["id"]
    page = f"/messages/{mid}"
    _due_in(sync_engine, mid, 200)
    supervisor = _browser(api, "it.supervisor")
    text = supervisor.get(page).text
    assert "The review of its retention opens on" in text
    assert 'name="until"' not in text

    old = _due_in(sync_engine, mid, 20)
    text = supervisor.get(page).text
    assert 'action="/messages/' + mid + '/retention"' in text
    home = supervisor.get("/").text
    assert 'aria-labelledby="reviews-title"' in home
    assert f'href="/messages/{mid}"' in home.split('id="reviews-title"')[1]

    # A date before the current end, then reasons too short: errors, the input kept.
    early = (old - dt.timedelta(days=5)).date().isoformat()
    r = supervisor.submit(page, page + "/retention", {"until": early, "reason": REASONS})
    assert r.status_code == 422
    assert 'href="#review-until"' in r.text
    assert f'value="{early}"' in r.text
    assert REASONS in r.text
    new_day = (old + dt.timedelta(days=400)).date()
    r = supervisor.submit(page, page + "/retention", {"until": new_day.isoformat(), "reason": "x"})
    assert r.status_code == 422
    assert 'href="#review-reason"' in r.text
    r = supervisor.submit(page, page + "/retention", {"until": "31/12/2030", "reason": REASONS})
    assert r.status_code == 422
    assert _leaves(sync_engine) == []

    r = supervisor.submit(
        page, page + "/retention", {"until": new_day.isoformat(), "reason": REASONS}
    )
    assert r.status_code == 303
    assert r.headers["location"] == page + "?extended=1"
    (leaf,) = _leaves(sync_engine)
    assert at(leaf["retention_until"]).date() == new_day
    shown = api.get(f"/v1/messages/{mid}", as_="it.officer").json()
    assert at(shown["retention_until"]).date() == new_day
    assert "The retention is extended" in supervisor.get(page + "?extended=1").text

    # An officer reads the page without the form.
    _due_in(sync_engine, mid, 20)
    assert 'name="until"' not in _browser(api, "it.officer").get(page).text


def test_a_supervisor_extends_an_ended_case_on_its_page(api: Api, sync_engine: Engine) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, {}, retention=dt.timedelta(days=365))
    case = to_execution(api)
    fire(api, case["id"], "withdraw", DRAFTER, {"reason": "Discontinued."})
    old = at(get_case(api, case["id"])["retention_until"])
    clock.now = old - dt.timedelta(days=10)
    page = f"/cases/{case['id']}"
    supervisor = _browser(api, "it.supervisor")
    assert f'action="{page}/retention"' in supervisor.get(page).text
    new_day = (old + dt.timedelta(days=100)).date()
    r = supervisor.submit(
        page, page + "/retention", {"until": new_day.isoformat(), "reason": REASONS}
    )
    assert r.status_code == 303, r.text
    seen = get_case(api, case["id"])
    assert at(seen["retention_until"]).date() == new_day
    text = supervisor.get(page).text
    assert "Retention extended by review" in text  # in the timeline
    assert re.search(r"The content is erased on .*The review of its retention opens on", text, re.S)
