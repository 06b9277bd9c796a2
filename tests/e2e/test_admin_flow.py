"""An operator registers a participant (a wrong id first: the error summary links to the
field), gives it a pasted signing key and a custodial encryption key, creates its first
account (the temporary password shown once), sets a webhook adapter, requeues a dead
letter, and reads the policy and the reference data; axe-core passes on every page."""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Engine

from broker.core import crypto
from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.test_web_admin import _dead_letter


def _sign_in(page: Any, login: str) -> None:
    page.goto("/")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def test_register_a_participant_set_its_webhook_and_requeue(
    page: Any, api: Api, sync_engine: Engine
) -> None:
    message_id = _dead_letter(api, sync_engine)
    _sign_in(page, "it.admin")
    page.get_by_role("link", name="Participants").click()
    page.wait_for_url("**/admin/participants")
    check_page(page, "admin-participants")

    page.get_by_label("Participant id").fill("Guardia Civil")
    page.get_by_label("Kind").select_option("police")
    page.get_by_label("Name").fill("Guardia Civil")
    page.get_by_role("button", name="Register").click()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    assert page.get_by_label("Name").input_value() == "Guardia Civil"
    check_page(page, "admin-participants-error")
    page.locator('.error-summary a[href="#p-id"]').click()
    assert page.evaluate("document.activeElement.id") == "p-id"
    page.keyboard.press("Control+A")
    page.keyboard.type("es.guardia-civil")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url("**/admin/participants/es.guardia-civil?registered=1")
    assert page.get_by_text("The participant is registered").is_visible()

    _private, public = crypto.generate_signing_key()
    page.get_by_label("Public key", exact=True).fill(base64.b64encode(public).decode())
    page.get_by_role("button", name="Add the key").click()
    page.wait_for_url("**?added=1")
    page.get_by_label("Purpose of the key").select_option("encryption")
    page.get_by_label("The node generates and holds it (custodial)").check()
    page.get_by_role("button", name="Add the key").click()
    page.wait_for_url("**?added=1")
    assert page.get_by_text("The node (custodial)").is_visible()
    assert page.locator("code.digest", has_text=crypto.key_id(public)).is_visible()
    check_page(page, "admin-participant")

    page.get_by_role("link", name="People and systems of this participant").click()
    page.wait_for_url("**/admin/participants/es.guardia-civil/accounts")
    page.get_by_label("A person, who signs in with a password").check()
    page.get_by_label("Login").fill("es.admin")
    page.get_by_label("Name").fill("Guardia Civil operator")
    page.get_by_label("admin", exact=True).check()
    page.get_by_role("button", name="Create the account").click()
    assert page.get_by_role("heading", name="Account created").is_visible()
    assert len(page.locator("#secret").inner_text()) >= 12
    check_page(page, "admin-account-created")
    page.get_by_role("link", name="Back to the accounts").click()
    assert page.get_by_text("es.admin").first.is_visible()
    check_page(page, "admin-accounts")
    # Replacing a password asks first, and changes nothing until the second press.
    page.get_by_role("button", name="Reset the password of es.admin").click()
    assert page.get_by_role("heading", name="Check before you reset the password").is_visible()
    check_page(page, "admin-account-confirm")
    page.get_by_role("button", name="Reset the password").click()
    assert page.get_by_role("heading", name="The password is reset").is_visible()

    page.goto("/admin/participants/es.guardia-civil/adapter")
    page.get_by_label("Adapter").select_option("webhook")
    page.get_by_label("Settings (JSON)").fill("{not json")
    page.get_by_role("button", name="Save the adapter").click()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    check_page(page, "admin-adapter-error")
    page.get_by_label("Settings (JSON)").fill('{"url": "https://guardia-civil.example/palermo"}')
    page.get_by_role("button", name="Save the adapter").click()
    page.wait_for_url("**/adapter?saved=1")
    check_page(page, "admin-adapter")

    page.get_by_role("link", name="Delivery", exact=True).first.click()
    page.wait_for_url("**/admin/delivery")
    assert page.locator("code.digest", has_text=message_id).is_visible()
    check_page(page, "admin-delivery")
    page.get_by_role("button", name=f"Requeue {message_id}").click()
    page.wait_for_url(f"**/admin/delivery?requeued={message_id}")
    assert page.get_by_role("status").is_visible()
    assert page.get_by_text("No dead letters").is_visible()
    check_page(page, "admin-delivery-requeued")

    page.get_by_role("link", name="Policy").click()
    page.wait_for_url("**/admin/policy")
    page.get_by_role("button", name="Explain").click()
    assert page.get_by_text("rules evaluated").is_visible()
    check_page(page, "admin-policy")
    page.get_by_role("link", name="Reference data").first.click()
    page.wait_for_url("**/reference")
    check_page(page, "reference")
