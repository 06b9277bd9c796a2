"""An officer composes an intelligence message, checks it (a refusal with its citation, then
a permit once fixed), sends it, and the recipient finds it in the inbox filtered by type;
axe-core passes on every page."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from broker.core.settings import Settings
from tests.conftest import PASSWORD
from tests.e2e.conftest import check_page
from tests.integration.messaging_helpers import relay


def _sign_in(page: Any, login: str) -> None:
    page.goto("/")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def test_compose_check_send_and_find_it_in_the_inbox(page: Any, settings: Settings) -> None:
    _sign_in(page, "it.officer")
    page.get_by_role("link", name="New message").first.click()
    page.wait_for_url("**/compose")
    check_page(page, "compose")

    page.get_by_label("Recipient").select_option("nl.fiu")
    page.get_by_label("Legal basis").fill("UNTOC art. 27")
    page.get_by_label("Purpose").fill("investigation RG 1234/2026")
    page.get_by_label("Data categories").fill("vessel-movement")
    page.get_by_label("Reference of person 1").fill("P-1")
    page.get_by_label("Message", exact=True).fill("Vessel MARIA LUISA expected in Genoa")
    page.get_by_role("button", name="Check").click()

    # Refused: no handling code, no evaluation, no fact or assessment; each rule cited.
    assert page.get_by_role("heading", name="The policy would refuse this message").is_visible()
    assert page.get_by_text("P12.code-required").first.is_visible()
    assert page.get_by_text("SIENA handling codes").first.is_visible()
    assert page.get_by_label("Legal basis").input_value() == "UNTOC art. 27"
    check_page(page, "compose-refused")
    page.locator('.error-summary a[href="#f-handling_code"]').first.click()
    assert page.evaluate("document.activeElement.id") == "f-handling_code"

    page.get_by_label("Handling code").select_option("H0")
    page.get_by_label("Source reliability").select_option("B")
    page.get_by_label("Information validity").select_option("2")
    page.get_by_label("It states a fact").check()
    page.get_by_role("button", name="Check").click()
    assert page.locator(".decision-permit").get_by_text("Permitted", exact=True).is_visible()
    check_page(page, "compose-permitted")

    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/messages/*")
    message_path = page.url.split("?")[0].split(page.url.split("/messages/")[0])[1]
    check_page(page, "compose-sent")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in?signed_out=1")

    with ThreadPoolExecutor(1) as pool:
        pool.submit(relay, settings).result()

    _sign_in(page, "nl.officer")
    page.get_by_role("link", name="Inbox", exact=True).click()
    page.wait_for_url("**/inbox")
    page.get_by_label("Message type").select_option("intel.message")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/inbox?*type=intel.message*")
    assert page.locator(f'a[href="{message_path}"]').is_visible()
    check_page(page, "inbox-filtered")
