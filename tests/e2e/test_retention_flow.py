"""The retention review in the browser (P17): a supervisor finds a message due for review on
the home page, opens it, extends its retention with reasons using the keyboard only, and sees
the confirmation; axe-core on each page."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine

from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.test_retention import send
from tests.integration.test_retention_review import REASONS, _due_in


def test_a_supervisor_extends_a_retention_by_review(
    page: Any, api: Api, sync_engine: Engine
) -> None:
    with ThreadPoolExecutor(1) as pool:  # Playwright holds this thread's event loop
        mid = pool.submit(send, api).result()["id"]
    old = _due_in(sync_engine, mid, 20)
    page.goto("/sign-in")
    page.get_by_label("Login").fill("it.supervisor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")
    assert page.get_by_role("heading", name="Retention reviews (1)").is_visible()
    check_page(page, "home-retention-reviews")

    page.locator(f'section[aria-labelledby="reviews-title"] a[href="/messages/{mid}"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/messages/{mid}")
    assert page.get_by_role("heading", name="Retention review").is_visible()
    check_page(page, "message-retention-review")

    # Too short a reason first: the error summary takes the focus and links to the field.
    new_day = (old + dt.timedelta(days=365)).date()
    page.get_by_label("New end of retention").fill(new_day.isoformat())
    page.get_by_label("Reasons of the review").fill("needed")
    page.get_by_label("Reasons of the review").press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/messages/{mid}/retention")
    assert page.locator(".error-summary").first.is_visible()
    assert page.get_by_label("New end of retention").input_value() == new_day.isoformat()
    check_page(page, "message-retention-error")

    page.get_by_label("Reasons of the review").fill(REASONS)
    page.get_by_role("button", name="Extend the retention").press("Enter")
    page.wait_for_url(f"**/messages/{mid}?extended=1")
    assert page.get_by_text("The retention is extended").is_visible()
    check_page(page, "message-retention-extended")
