"""An officer signs in, reads a message after giving a justification, and acknowledges it;
every page passes axe-core. Keyboard only, where the flow allows it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from broker.core.settings import Settings
from tests.conftest import PASSWORD, Api, World
from tests.e2e.conftest import check_page
from tests.integration.messaging_helpers import envelope, relay


def _sign_in(page: Any, login: str) -> None:
    page.goto("/")
    assert "/sign-in" in page.url
    check_page(page, "sign-in")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def test_read_with_justification_and_acknowledge(
    page: Any, api: Api, world: World, settings: Settings
) -> None:
    sent = api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"]))
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["id"]
    # Playwright's sync API holds this thread's event loop: the relay runs in another thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(relay, settings).result()

    _sign_in(page, "it.officer")
    assert page.get_by_role("heading", name="My work").is_visible()
    check_page(page, "home-messages")

    page.get_by_role("link", name="Inbox", exact=True).click()
    page.wait_for_url("**/inbox")
    check_page(page, "inbox")

    page.locator(f'a[href="/messages/{message_id}"]').click()
    page.wait_for_url(f"**/messages/{message_id}")
    assert page.get_by_role("heading", name="Use restrictions").is_visible()
    check_page(page, "message")

    # A justification too short is refused with an error summary linking to the field.
    page.get_by_label("Justification").fill("why")
    page.get_by_role("button", name="Read the content").click()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    check_page(page, "message-justification-error")
    page.get_by_role("link", name="Give a justification").click()
    assert page.evaluate("document.activeElement.id") == "justification"
    page.keyboard.press("Control+A")
    page.keyboard.type("checking the vessel arrival for RG 1234/2026")
    page.get_by_role("button", name="Read the content").click()
    assert page.get_by_text("MARIA LUISA").is_visible()
    check_page(page, "content")

    page.get_by_role("link", name="Back to the message").click()
    page.get_by_role("button", name="Acknowledge receipt").click()
    assert page.get_by_text("Your signed receipt was sent to the sender").is_visible()
    check_page(page, "message-acknowledged")
    status = api.get(f"/v1/messages/{message_id}", as_="it.officer").json()["status"]
    assert status == "receipted"

    page.get_by_role("link", name="Sent", exact=True).click()
    check_page(page, "sent")
    page.get_by_role("link", name="Preferences").click()
    check_page(page, "preferences")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in?signed_out=1")
    assert page.get_by_text("You have signed out").is_visible()


def test_each_language_renders_and_errors_are_pages(page: Any) -> None:
    page.goto("/sign-in")
    page.get_by_role("button", name="Français").click()
    assert page.get_by_role("heading", name="Se connecter").is_visible()
    assert page.locator("html").get_attribute("lang") == "fr"
    check_page(page, "sign-in-fr")
    page.get_by_role("button", name="Español").click()
    assert page.get_by_role("heading", name="Iniciar sesión").is_visible()
    check_page(page, "sign-in-es")
    page.get_by_role("button", name="English").click()
    page.get_by_label("Login").fill("it.officer")
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("The login or the password is wrong").is_visible()
    check_page(page, "sign-in-error")
    page.goto("/no-such-page")
    assert page.get_by_role("heading", name="Page not found").is_visible()
    check_page(page, "not-found")


def test_keyboard_only_sign_in_and_skip_link(page: Any) -> None:
    page.goto("/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the first field of the main content
    assert page.evaluate("document.activeElement.id") == "login"
    page.keyboard.type("it.supervisor")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/")
    assert page.get_by_role("heading", name="My work").is_visible()


def test_tablet_width_and_print(page: Any, api: Api, world: World, settings: Settings) -> None:
    sent = api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"]))
    message_id = sent.json()["id"]
    with ThreadPoolExecutor(1) as pool:
        pool.submit(relay, settings).result()
    _sign_in(page, "it.supervisor")
    page.set_viewport_size({"width": 768, "height": 1024})
    for path, name in ((f"/messages/{message_id}", "message-tablet"), ("/inbox", "inbox-tablet")):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways at 768 px"
        check_page(page, name)
    page.emulate_media(media="print")
    assert not page.locator(".masthead").is_visible()
    assert page.locator("main").is_visible()
    page.emulate_media(media="screen")
