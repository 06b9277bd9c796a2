"""Sign-in throttling in the browser (issue 11 item 11, issue 12 "Login"): wrong passwords
say so, then the login must wait and the page says for how long, even for the right
password; axe-core on the sign-in page in each state."""

from __future__ import annotations

from typing import Any

import pytest

from broker.core.settings import Settings
from tests.conftest import PASSWORD
from tests.e2e.conftest import check_page


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Two free failures, then a two-minute delay: long enough to be seen by a browser.
    return settings.model_copy(
        update={
            "auth_free_failures": 2,
            "auth_base_delay_seconds": 120.0,
            "auth_max_delay_seconds": 600.0,
        }
    )


def _try(page: Any, login: str, password: str) -> None:
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()


def test_sign_in_is_throttled_on_the_page(page: Any) -> None:
    page.goto("/sign-in")
    for _ in range(2):
        _try(page, "it.officer", "not the password at all")
        assert page.get_by_role("alert").inner_text().count("The login or the password is wrong")
    check_page(page, "sign-in-wrong")
    # Past the free failures, the right password waits too: the page says for how long.
    _try(page, "it.officer", PASSWORD)
    alert = page.get_by_role("alert").inner_text()
    assert "Too many failed sign-ins" in alert
    assert "2 minutes" in alert
    assert page.url.endswith("/sign-in")
    check_page(page, "sign-in-throttled")
    # Another person at the same computer still signs in.
    _try(page, "it.supervisor", PASSWORD)
    page.wait_for_url("**/")
    assert not page.url.endswith("/sign-in")


def test_the_password_page_with_the_keyboard_only(page: Any) -> None:
    page.goto("/sign-in")
    _try(page, "it.supervisor", PASSWORD)
    page.wait_for_url("**/")
    page.goto("/preferences")
    page.get_by_role("link", name="Change your password").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/preferences/password")
    check_page(page, "password")
    page.get_by_label("Current password").focus()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type("a brand new passphrase")
    page.keyboard.press("Enter")
    page.wait_for_url("**/sign-in?password_changed=1")
    assert "Your password is changed" in page.get_by_role("status").inner_text()
    check_page(page, "password-changed")
