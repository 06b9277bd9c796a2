"""Opening the other request workflows in the browser: the Italian central authority's officer
sets up a joint investigation team with the German police (UNTOC art. 19) with the keyboard
alone, from the Cases page to the saved draft: the members typed one per line, the team's end
typed into the date and time field, a wrong member fixed from the error summary; the team
then opens, its agreement complete (P21). The forms of an extradition request (UNTOC art. 16)
and of a police information request (Directive (EU) 2023/977) are checked too. axe-core runs
on every page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.test_case_helpers import fire, get_case, register_partner


def _sign_in(page: Any, login: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in?signed_out=1")


def _type_into(page: Any, selector: str, *lines: str) -> None:
    """Focus the field and type, pressing Enter between lines, as a keyboard user does."""
    page.focus(selector)
    for i, line in enumerate(lines):
        if i:
            page.keyboard.press("Enter")
        page.keyboard.type(line)


def test_a_joint_team_set_up_with_the_keyboard(page: Any, api: Api) -> None:
    register_partner(api, "it.police", "police", {"it.investigator": "officer"})
    register_partner(api, "nl.police", "police", {"nl.spoc": "officer"})
    # The team's end: next year, on a day equal to its month and at an afternoon hour, so
    # that the keys typed read the same whether Chromium shows the field day or month first,
    # in 24 or 12 hours (18 sets PM).
    end = dt.datetime(dt.datetime.now(dt.UTC).year + 1, 3, 3, 18, 0)

    _sign_in(page, "it.officer")
    page.get_by_role("link", name="Cases", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases")
    check_page(page, "cases-openers")
    page.get_by_role("link", name="New joint investigation team").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases/new?workflow=jit.team")
    page.focus("#f-counterpart")
    page.keyboard.type("Bundes")  # the option's name, typed into the list
    assert page.input_value("#f-counterpart") == "de.bka"
    check_page(page, "jit-new-counterpart")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases/new?workflow=jit.team&counterpart=de.bka")

    _type_into(page, "#f-agreement-reference", "JIT-IT-DE-US-2026/01")
    _type_into(page, "#f-parties", "it.central-authority", "de.bka", "US central authority")
    # The date and time field, segment by segment, as a keyboard user types it.
    _type_into(page, "#f-expiry", end.strftime("%d%m%Y"))
    page.keyboard.press("Tab")
    page.keyboard.type(end.strftime("%H%M"))
    assert page.input_value("#f-expiry") == end.strftime("%Y-%m-%dT%H:%M")
    _type_into(page, "#f-subject-matter", "Cocaine trafficking through Gioia Tauro and Hamburg.")
    _type_into(page, "#f-purpose", "joint_investigation")
    _type_into(page, "#f-legal-basis", "untoc")
    page.focus("#f-transfer-basis")
    page.keyboard.type("appropriate")
    assert page.input_value("#f-transfer-basis") == "appropriate_safeguards"
    check_page(page, "jit-new")

    # A member that is no participant id: the summary links to the field, the input is kept.
    page.get_by_role("button", name="Save as draft").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    check_page(page, "jit-new-error")
    assert page.input_value("#f-agreement-reference") == "JIT-IT-DE-US-2026/01"
    link = page.get_by_role("link", name=re.compile(r"^Members of the team: "))
    link.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "f-parties"
    page.keyboard.press("Control+End")
    for _ in "US central authority":
        page.keyboard.press("Backspace")
    page.keyboard.type("us.central-authority")
    assert page.input_value("#f-expiry") == end.strftime("%Y-%m-%dT%H:%M")  # kept
    page.get_by_role("button", name="Save as draft").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/cases/*?opened=1")
    match = re.search(r"/cases/([0-9a-f-]{36})", page.url)
    assert match
    case_id = match.group(1)
    check_page(page, "jit-draft")
    case = get_case(api, case_id, "it.officer")
    assert (case["workflow"], case["counterpart"], case["state"]) == ("jit.team", "de.bka", "DRAFT")
    # P21.agreement: the team opens only with its reference, members and end.
    assert fire(api, case_id, "open_team", "it.officer")["case"]["state"] == "ACTIVE"

    # The extradition request's form, between central authorities.
    page.goto("/cases/new?workflow=extradition.request")
    assert page.input_value("#f-counterpart") == "us.central-authority"
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_label("Arrest warrant or enforceable judgment").is_visible()
    check_page(page, "extradition-new")
    _sign_out(page)

    # The police information request's form, between police participants.
    _sign_in(page, "it.investigator")
    page.goto("/cases/new?workflow=intel.request&counterpart=nl.police")
    assert page.get_by_label("Access to the information").is_visible()
    check_page(page, "intel-new")
