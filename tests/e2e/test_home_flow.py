"""The home page in the browser: the Italian supervisor's work list with every section
filled (a message to acknowledge, a draft whose next event is theirs, a request in vetting
awaiting the four-eyes approval of UNTOC art. 18(13), a deadline coming and one overdue
(art. 18(24)), and the reminders and escalations the clocks raised), checked by axe-core,
then followed by its links with the keyboard."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from broker.core.settings import Settings
from tests.conftest import PASSWORD, Api, World
from tests.e2e.conftest import check_page
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_clocks import CLOCKS
from tests.integration.test_case_helpers import (
    DRAFTER,
    FakeClock,
    fire,
    open_case,
    set_clocks,
    tick,
    to_transmitted,
    use_clock,
)


def test_the_supervisors_work_list(page: Any, api: Api, world: World, settings: Settings) -> None:
    now = dt.datetime.now(dt.UTC)
    clock = use_clock(api, FakeClock(now - dt.timedelta(days=9)))
    set_clocks(api, CLOCKS)
    overdue = to_transmitted(api)  # acknowledgement due two days ago
    clock.advance(days=3)
    coming = to_transmitted(api)  # due in a day
    vetting = open_case(api)
    fire(api, vetting["id"], "submit_for_vetting", DRAFTER)
    draft = open_case(api, as_="it.supervisor")
    sent = api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"]))
    assert sent.status_code == 202, sent.text
    # Playwright's sync API holds this thread's event loop: the relay and the timers run in
    # another thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(relay, settings).result()
        pool.submit(tick, api, now).result()

    page.goto("/sign-in")
    page.get_by_label("Login").fill("it.supervisor")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")
    assert page.get_by_role("heading", name="My work", exact=True).is_visible()
    for heading in (
        "Waiting for your acknowledgement (1)",
        "Awaiting your approval (1)",
        "Cases waiting for you (1)",
        "Deadlines (2, 1 overdue)",
        "Reminders and escalations (2)",
    ):
        assert page.get_by_role("heading", name=heading).is_visible(), heading
    assert page.get_by_text("Overdue by").first.is_visible()
    assert page.get_by_text("Escalation").first.is_visible()
    assert page.get_by_text("left").first.is_visible()
    for case in (overdue, coming, vetting, draft):
        assert page.locator(f'a[href="/cases/{case["id"]}"]').first.is_visible()
    check_page(page, "home")

    # The next event is a link to its form; keyboard only.
    link = page.locator(f'a[href="/cases/{draft["id"]}/events/submit_for_vetting"]')
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/cases/{draft['id']}/events/submit_for_vetting")
    page.go_back()
    page.get_by_role("link", name="Open the approval queue").click()
    page.wait_for_url("**/cases/approvals")
    assert page.locator(f'a[href="/cases/{vetting["id"]}"]').is_visible()
