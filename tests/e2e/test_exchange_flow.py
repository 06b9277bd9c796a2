"""An FIU exchange in the browser: the Dutch FIU discloses to a second FIU, which is refused a
forward to the police (the rule and its citation on the page), asks the provider's consent
for that onward use, is refused, asks again with the keyboard only, and is granted (the
provider answers in French, with the keyboard only); then the forward goes. axe-core runs on
every page, in English and in French where the page is a plain GET."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from broker.core.settings import Settings
from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.messaging_helpers import relay
from tests.integration.test_case_helpers import register_partner

PURPOSE = "money laundering analysis"
ONWARD = "joint investigation with the BKA"


def _sign_in(page: Any, login: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def _sign_out(page: Any) -> None:
    page.locator("form[action='/sign-out'] button").click()
    page.wait_for_url("**/sign-in?signed_out=1")


def _language(page: Any, code: str) -> None:
    page.context.add_cookies([{"name": "palermo_lang", "value": code, "url": _origin(page)}])


def _origin(page: Any) -> str:
    match = re.match(r"https?://[^/]+", page.url)
    assert match
    return match.group(0)


def _check_both(page: Any, name: str) -> None:
    """axe-core on the page as it is (English), then on the same GET page in French."""
    check_page(page, name)
    _language(page, "fr")
    page.reload()
    assert page.locator("html").get_attribute("lang") == "fr"
    check_page(page, f"{name}-fr")
    _language(page, "en")
    page.reload()


def _tab_to(page: Any, selector: str, limit: int = 120) -> None:
    """Press Tab until the element matching ``selector`` has the focus."""
    target = page.locator(selector)
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def _relay(settings: Settings) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(relay, settings).result()


def test_disclosure_consent_refused_then_granted_and_forwarded(
    page: Any, api: Api, settings: Settings
) -> None:
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})

    # The Dutch FIU discloses to the Italian FIU, for its own analysis only.
    _sign_in(page, "nl.officer")
    page.goto("/compose?type=fiu.disclosure")
    _check_both(page, "exchange-compose")
    page.get_by_label("Recipient").select_option("it.fiu")
    page.get_by_label("Legal basis", exact=True).fill("Egmont Principles")
    page.get_by_label("Purpose", exact=True).fill(PURPOSE)
    page.get_by_label("Message", exact=True).fill(
        "Transfers from ACME Ltd to a shell company in Valletta"
    )
    page.get_by_role("button", name="Send").click()
    page.wait_for_url("**/messages/*")
    match = re.search(r"/messages/([0-9a-f-]{36})", page.url)
    assert match
    message_id = match.group(1)
    check_page(page, "exchange-disclosed")
    _sign_out(page)
    _relay(settings)

    # The Italian FIU may not pass it to the police: the refusal cites its rule.
    _sign_in(page, "it.analyst")
    page.goto(f"/messages/{message_id}")
    _check_both(page, "exchange-received")
    page.get_by_role("link", name="Forward", exact=True).click()
    page.wait_for_url(f"**/messages/{message_id}/forward")
    _check_both(page, "exchange-forward")
    page.locator("#recipient").select_option("de.bka")
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_role("heading", name="Check before you forward").is_visible()
    check_page(page, "exchange-forward-check")
    page.get_by_role("button", name="Forward", exact=True).click()
    refusal = page.locator(".refusal")
    assert refusal.get_by_role("heading", name="The forward was refused").is_visible()
    assert refusal.get_by_text("P18.named-recipients").is_visible()
    assert refusal.locator(".citation").first.inner_text().strip() != ""
    check_page(page, "forward-refused")

    # The refusal offers the consent request, prefilled; reasons first, then it is asked.
    assert page.locator("#consent-recipient").input_value() == "de.bka"
    page.locator("#consent-purpose").fill(ONWARD)
    page.get_by_role("button", name="Ask for consent").click()
    assert page.get_by_role("link", name="Give your reasons").is_visible()
    check_page(page, "exchange-consent-request-error")
    page.locator("#consent-reasons").fill("the BKA investigates the Valletta company")
    page.get_by_role("button", name="Ask for consent").click()
    page.wait_for_url("**/consents/*?asked=1")
    consent_path = page.url.split("?")[0].removeprefix(_origin(page))
    _check_both(page, "exchange-consent-asked")
    _sign_out(page)
    _relay(settings)

    # The provider refuses, with reasons.
    _sign_in(page, "nl.officer")
    page.get_by_role("link", name="Consents", exact=True).click()
    _check_both(page, "exchange-consents")
    page.locator(f'a[href="{consent_path}"]').click()
    _check_both(page, "exchange-consent")
    page.locator("#refuse-reasons").fill("the analysis is still open")
    page.get_by_role("button", name="Refuse consent").click()
    page.wait_for_url(f"**{consent_path}?answered=1")
    assert page.locator(".tag-refused").is_visible()
    _sign_out(page)
    _relay(settings)

    # The requester reads the refusal and asks again, with the keyboard only.
    _sign_in(page, "it.analyst")
    page.goto(consent_path)
    assert page.locator(".tag-refused").is_visible()
    _tab_to(page, "a:text('Ask again')")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/messages/{message_id}/consent-request?*")
    _check_both(page, "exchange-ask-again")
    _tab_to(page, "#consent-reasons")
    page.keyboard.type("the analysis closed on 1 December; the BKA case is open")
    _tab_to(page, "button:text('Ask for consent')")
    page.keyboard.press("Enter")
    page.wait_for_url("**/consents/*?asked=1")
    second = page.url.split("?")[0].removeprefix(_origin(page))
    assert second != consent_path
    _sign_out(page)
    _relay(settings)

    # The provider grants, in French and with the keyboard only.
    _sign_in(page, "nl.officer")
    _language(page, "fr")
    page.goto(second)
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_role("heading", name=re.compile("Accorder")).is_visible()
    check_page(page, "exchange-consent-fr")
    _tab_to(page, "#grant-reasons")
    page.keyboard.type("pour l'enquête du BKA uniquement")
    _tab_to(page, f"form[action='{second}/grant'] button")
    page.keyboard.press("Space")
    page.wait_for_url(f"**{second}?answered=1")
    assert page.locator(".tag-granted").inner_text() == "Consentement accordé"
    check_page(page, "consent-answer-fr")
    _language(page, "en")
    _sign_out(page)
    _relay(settings)

    # With the consent on record, the forward goes.
    _sign_in(page, "it.analyst")
    page.goto(second)
    page.get_by_role("link", name="Forward now").click()
    page.wait_for_url(f"**/messages/{message_id}/forward?*")
    assert page.locator("#recipient").input_value() == "de.bka"
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Forward", exact=True).click()
    page.wait_for_url(f"**/messages/{message_id}/forward/sent?id=*")
    _check_both(page, "exchange-forwarded")
