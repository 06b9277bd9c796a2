"""Held messages in the browser (P16.derogation, LED art. 38(2)): a supervisor opens the held
messages from the navigation, rejects one without reasons (the error summary links to the
field), then approves another; axe-core on each page."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.test_approvals import held


def test_a_supervisor_decides_held_messages(page: Any, api: Api) -> None:
    with ThreadPoolExecutor(1) as pool:  # Playwright holds this thread's event loop
        first = pool.submit(held, api).result()["id"]
        second = pool.submit(held, api).result()["id"]
    page.goto("/sign-in")
    page.get_by_label("Login").fill("it.supervisor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")
    page.get_by_role("link", name="Held messages").click()
    page.wait_for_url("**/approvals/messages")
    assert page.get_by_role("heading", name="Messages waiting for approval").is_visible()
    check_page(page, "approvals-messages")

    page.locator(f'form[action="/messages/{first}/reject"] button').click()
    page.wait_for_url(f"**/messages/{first}/reject")
    assert page.locator(".error-summary").first.is_visible()
    check_page(page, "approvals-messages-error")

    page.locator(f"#reason-{first}").fill("no derogation of LED art. 38(1) fits")
    page.locator(f'form[action="/messages/{first}/reject"] button').click()
    page.wait_for_url("**/approvals/messages?done=rejected")
    page.locator(f'form[action="/messages/{second}/approve"] button').click()
    page.wait_for_url("**/approvals/messages?done=approved")
    assert page.get_by_text("No message is waiting for approval.").is_visible()
    check_page(page, "approvals-messages-done")
