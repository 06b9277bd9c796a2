"""Held messages in the web app (a ``require_approval`` obligation; P16.derogation, LED art.
38(2)): a supervisor of the sending participant approves or rejects them with reasons on one
page, through the same services and leaves as the API; the drafter cannot decide their own,
an officer cannot open the page, and a rejection without reasons gets an error summary."""

from __future__ import annotations

from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.test_approvals import held
from tests.integration.web_helpers import Browser

PAGE = "/approvals/messages"


def _browser(api: Api, login: str) -> Browser:
    api.client.cookies.clear()
    browser = Browser(api.client)
    assert browser.sign_in(login).status_code == 303
    return browser


def test_a_supervisor_approves_on_the_page(api: Api, sync_engine: Engine) -> None:
    mid = held(api)["id"]
    supervisor = _browser(api, "it.supervisor")
    page = supervisor.get(PAGE)
    assert page.status_code == 200
    assert f'action="/messages/{mid}/approve"' in page.text
    assert "P16.derogation" in page.text
    assert 'href="/approvals/messages"' in supervisor.get("/").text  # in the navigation
    r = supervisor.submit(PAGE, f"/messages/{mid}/approve")
    assert r.status_code == 303
    assert r.headers["location"] == PAGE + "?done=approved"
    assert api.get(f"/v1/messages/{mid}", as_="it.officer").json()["status"] == "accepted"
    assert count_rows(sync_engine, "audit_events", "kind = 'message:approved'") == 1
    assert f'action="/messages/{mid}/approve"' not in supervisor.get(PAGE).text


def test_a_rejection_needs_reasons_and_keeps_the_input(api: Api, sync_engine: Engine) -> None:
    mid = held(api)["id"]
    supervisor = _browser(api, "it.supervisor")
    r = supervisor.submit(PAGE, f"/messages/{mid}/reject", {"reason": "   "})
    assert r.status_code == 422
    assert f'href="#reason-{mid}"' in r.text
    assert 'aria-invalid="true"' in r.text
    assert count_rows(sync_engine, "audit_events", "kind = 'message:rejected'") == 0
    reason = "no derogation fits: ask for appropriate safeguards"
    r = supervisor.submit(PAGE, f"/messages/{mid}/reject", {"reason": reason})
    assert r.status_code == 303
    shown = api.get(f"/v1/messages/{mid}", as_="it.officer").json()
    assert shown["status"] == "rejected"
    assert shown["approval"]["reason"] == reason


def test_the_drafter_gets_no_forms_and_an_officer_no_page(api: Api) -> None:
    mid = held(api, as_="it.supervisor")["id"]
    supervisor = _browser(api, "it.supervisor")
    text = supervisor.get(PAGE).text
    assert f'href="/messages/{mid}"' in text
    assert f'action="/messages/{mid}/approve"' not in text
    r = supervisor.submit(PAGE, f"/messages/{mid}/approve")
    assert r.status_code == 403
    officer = _browser(api, "it.officer")
    assert officer.get(PAGE).status_code == 403
    assert 'href="/approvals/messages"' not in officer.get("/").text


def test_the_sender_sees_the_status_named_on_the_sent_list(api: Api) -> None:
    held(api)
    officer = _browser(api, "it.officer")
    assert "Waiting for a supervisor's approval" in officer.get("/sent").text


def test_a_held_message_is_no_retention_review_of_the_recipient(
    api: Api, sync_engine: Engine
) -> None:
    """Near its deadline a held message is the sender's supervisors' review only: the
    recipient's home page does not list what never reached it."""
    from tests.integration.test_retention_review import _due_in

    mid = held(api)["id"]
    _due_in(sync_engine, mid, 20)
    sender_home = _browser(api, "it.supervisor").get("/").text
    assert f'href="/messages/{mid}"' in sender_home.split('id="reviews-title"')[1]
    recipient_home = _browser(api, "us.supervisor").get("/").text
    assert f'href="/messages/{mid}"' not in recipient_home
