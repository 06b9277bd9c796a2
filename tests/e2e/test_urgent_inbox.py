"""The inbox lists urgent messages not yet acknowledged first, under their own heading; the
page passes axe-core."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from broker.core.settings import Settings
from tests.conftest import PASSWORD, Api, World
from tests.e2e.conftest import check_page
from tests.integration.messaging_helpers import envelope, relay


def test_urgent_messages_come_first_in_the_inbox(
    page: Any, api: Api, world: World, settings: Settings
) -> None:
    for urgent in (False, True):
        sent = api.post(
            "/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"], urgent=urgent)
        )
        assert sent.status_code == 202, sent.text
    urgent_id = sent.json()["id"]
    with ThreadPoolExecutor(1) as pool:
        pool.submit(relay, settings).result()

    page.goto("/")
    page.get_by_label("Login").fill("it.officer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")
    page.goto("/inbox")
    heading = page.get_by_role("heading", name="Urgent, not yet acknowledged")
    assert heading.is_visible()
    section = page.locator("section", has=heading)
    assert section.locator(f'a[href="/messages/{urgent_id}"]').count() == 1
    assert section.locator('a[href^="/messages/"]').count() == 1
    check_page(page, "inbox-urgent")
