"""Oversight in the browser: the supervisory authority signs in, opens the statistics, filters
them by type and urgency with the keyboard, sees a chart beside its table, then opens the
consultations report; axe-core checks each page."""

from __future__ import annotations

from typing import Any

from tests.conftest import PASSWORD, Api
from tests.e2e.conftest import check_page
from tests.integration.test_case_clocks import CLOCKS
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    FakeClock,
    fire,
    set_clocks,
    to_transmitted,
    use_clock,
)


def test_oversight_reads_the_statistics_and_the_consultations(page: Any, api: Api) -> None:
    clock = use_clock(api, FakeClock())
    set_clocks(api, CLOCKS)
    cases = [to_transmitted(api) for _ in range(6)]
    for case in cases[:5]:  # five acknowledged a day or two later, one not yet
        clock.advance(hours=10)
        fire(api, case["id"], "acknowledge", HANDLER)
    for who, why in (
        (DRAFTER, "checking the request before the meeting"),
        (HANDLER, "assessing the request under art. 18(21)"),
    ):
        r = api.get(f"/v1/cases/{cases[0]['id']}/request", as_=who, params={"justification": why})
        assert r.status_code == 200, r.text

    page.goto("/sign-in")
    page.get_by_label("Login").fill("oversight")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")
    page.get_by_role("link", name="Statistics").click()
    page.wait_for_url("**/oversight/statistics")

    # The filter with the keyboard only: choose the type, the urgency, submit.
    page.get_by_label("Type", exact=True).focus()
    page.keyboard.press("ArrowDown")  # "mla.request", the first workflow
    page.get_by_label("Urgency", exact=True).select_option("normal")
    assert page.get_by_label("Type", exact=True).input_value() == "mla.request"
    page.get_by_role("button", name="Show").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/oversight/statistics?*type=mla.request*")
    assert "urgency=normal" in page.url
    chart = page.get_by_role("img", name="Cases by type")
    assert chart.is_visible()
    table = page.locator("#table-cases_by_type")
    assert table.get_by_role("cell", name="mla.request").is_visible()
    assert table.get_by_role("cell", name="6", exact=True).is_visible()
    assert page.get_by_role("img", name="Median turnaround in hours, by request type").is_visible()
    csv_link = page.get_by_role("link", name="Download these figures (CSV)")
    assert "type=mla.request" in (csv_link.get_attribute("href") or "")
    # Below the threshold (5 by default): shown as "<5", never the exact count.
    receipts = page.locator("#table-turnaround_by_state_pair")
    assert receipts.get_by_role("cell", name="mla.transmission_to_receipt").is_visible()
    assert page.locator("#table-cases_by_state").get_by_role("cell", name="<5").is_visible()
    check_page(page, "statistics")

    # A bad period: the error summary links to the field.
    page.goto("/oversight/statistics?from=2026-03-05&to=2026-03-01")
    summary = page.get_by_role("alert")
    assert summary.get_by_role(
        "link", name="The end of the period must be on or after its start"
    ).is_visible()
    check_page(page, "statistics-error")

    page.get_by_role("link", name="Consultations").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/oversight/consultations")
    assert page.get_by_role("heading", name="Consultations", exact=True).is_visible()
    assert page.get_by_text("assessing the request under art. 18(21)").is_visible()
    assert page.get_by_text("checking the request before the meeting").is_visible()
    check_page(page, "consultations")
