"""An MLA request from drafting to evidence, in the browser: the Italian officer drafts a
request to the United States (and is told what is wrong first), the Italian supervisor
approves and transmits it, the US officer acknowledges, executes and delivers an evidence
file, and the Italian officer downloads it with the same SHA-256. axe-core runs on every
page; the approval is made with the keyboard only."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from tests.conftest import PASSWORD
from tests.e2e.conftest import check_page

EVIDENCE = b"%PDF-1.7\n" + b"statement of account 2024-2025\n" * 4000
PARTICULARS = {
    "#f-requesting-authority": "Procura della Repubblica di Milano",
    "#f-subject-matter": "Laundering of proceeds of drug trafficking through shell companies",
    "#f-conducting-authority": "Public prosecutor, DDA Milano, proceeding RG 1234/2026",
    "#f-facts-summary": "Funds moved from Milan to accounts in New York in 2024 and 2025.",
    "#f-assistance-sought": "Bank records of two accounts held at a New York bank.",
    "#f-persons-concerned-0-ref": "p1",
    "#f-persons-concerned-0-identity": "M. R.",
    "#f-persons-concerned-0-nationality": "IT",
    "#f-purpose": "criminal_investigation",
    "#f-offence": "money laundering",
    "#f-max-penalty-years": "twelve",
    "#f-legal-basis": "it-us-mlat-1982",
    "#f-language": "en",
    "#f-deadline": "2027-06-30T12:00",
    "#f-deadline-reason": "hearing on 1 July 2027",
}


def _sign_in(page: Any, login: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/")


def _sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in?signed_out=1")


def _fire(
    page: Any, case_id: str, button: str, name: str, fill: dict[str, str] | None = None
) -> None:
    page.get_by_role("link", name=button, exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}/events/**")
    check_page(page, name)
    for selector, value in (fill or {}).items():
        page.fill(selector, value)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}?done=*")


def test_mla_request_from_draft_to_evidence(page: Any, tmp_path: Path) -> None:
    _sign_in(page, "it.officer")
    page.get_by_role("link", name="Cases", exact=True).click()
    page.wait_for_url("**/cases")
    check_page(page, "cases-empty")
    page.get_by_role("link", name="New MLA request").click()
    page.get_by_label("Requested State's authority").select_option("us.central-authority")
    check_page(page, "case-new-counterpart")
    page.get_by_role("button", name="Continue").click()
    assert page.get_by_text("Accepted: en").is_visible()
    for selector, value in PARTICULARS.items():
        page.fill(selector, value)
    page.select_option("#f-persons-concerned-0-category", "suspect")
    page.select_option("#f-channel", "central_authority")
    page.select_option("#f-transfer-basis", "appropriate_safeguards")
    page.get_by_label("records", exact=True).check()
    check_page(page, "case-new")

    # A wrong value: the summary links to the field, the input is kept, nothing is stored.
    page.get_by_role("button", name="Save as draft").click()
    assert page.get_by_role("heading", name="There is a problem").is_visible()
    check_page(page, "case-new-error")
    assert page.input_value("#f-assistance-sought").startswith("Bank records")
    page.get_by_role("link", name="Maximum penalty (years): Enter a whole number").click()
    assert page.evaluate("document.activeElement.id") == "f-max-penalty-years"
    page.keyboard.press("Control+A")
    page.keyboard.type("12")
    page.get_by_role("button", name="Save as draft").click()
    page.wait_for_url("**/cases/*?opened=1")
    match = re.search(r"/cases/([0-9a-f-]{36})", page.url)
    assert match
    case_id = match.group(1)
    assert page.get_by_text("The draft is saved").is_visible()
    check_page(page, "case-draft")

    _fire(page, case_id, "Submit for vetting", "case-event-submit")
    assert page.locator(".tag-state").first.inner_text() == "Central authority vetting"
    page.get_by_role("link", name="Letter of request (printable)").click()
    page.get_by_label("Justification").fill("checking the letter before vetting")
    page.get_by_role("button", name="Show the letter").click()
    assert page.get_by_role("heading", name="Request for mutual legal assistance").is_visible()
    assert page.get_by_text("Procura della Repubblica di Milano").first.is_visible()
    check_page(page, "case-letter")
    page.emulate_media(media="print")
    assert not page.locator(".masthead").is_visible()
    assert page.locator(".letter").is_visible()
    if (shots := _shots()) is not None:
        page.screenshot(path=str(shots / "case-letter-print.png"), full_page=True)
    page.emulate_media(media="screen")
    _sign_out(page)

    # The supervisor approves and transmits from the approval queue, with the keyboard only.
    _sign_in(page, "it.supervisor")
    page.get_by_role("link", name="Approvals", exact=True).click()
    check_page(page, "case-approvals")
    page.locator(f'a[href="/cases/{case_id}"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/cases/{case_id}")
    check_page(page, "case-vetting")
    page.get_by_role("link", name="Approve and transmit", exact=True).focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/cases/{case_id}/events/transmit")
    check_page(page, "case-event-transmit")
    button = page.get_by_role("button", name="Approve and transmit", exact=True)
    button.focus()
    assert page.evaluate("document.activeElement.tagName") == "BUTTON"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/cases/{case_id}?done=transmit")
    assert page.locator(".tag-state").first.inner_text() == "Transmitted"
    _sign_out(page)

    # The requested side acknowledges, assesses, accepts and executes with evidence.
    _sign_in(page, "us.officer")
    page.get_by_role("link", name="Cases", exact=True).click()
    check_page(page, "cases-requested")
    page.locator(f'a[href="/cases/{case_id}"]').click()
    _fire(page, case_id, "Acknowledge receipt", "case-event-acknowledge")
    check_page(page, "case-received")
    _fire(page, case_id, "Start the assessment", "case-event-assessment")
    _fire(page, case_id, "Accept the request", "case-event-accept")
    _fire(
        page,
        case_id,
        "Assign execution",
        "case-event-assign",
        {"#f-executing-authority": "US Attorney, SDNY"},
    )
    page.set_input_files(
        "#file", files=[{"name": "records.pdf", "mimeType": "application/pdf", "buffer": EVIDENCE}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}?uploaded=*")
    digest = hashlib.sha256(EVIDENCE).hexdigest()
    assert page.locator("#uploaded-sha256").inner_text() == digest
    check_page(page, "case-uploaded")
    page.get_by_role("link", name="Complete execution", exact=True).click()
    page.get_by_label(re.compile("records.pdf")).check()
    check_page(page, "case-event-complete")
    page.get_by_role("button", name="Complete execution", exact=True).click()
    page.wait_for_url(f"**/cases/{case_id}?done=complete")
    assert page.locator(".tag-state").first.inner_text() == "Executed"
    check_page(page, "case-executed")
    _sign_out(page)

    # The requesting side downloads the file: the same bytes, the same SHA-256.
    _sign_in(page, "it.officer")
    page.goto(f"/cases/{case_id}")
    check_page(page, "case-requesting-executed")
    page.get_by_role("link", name="records.pdf").click()
    assert page.locator("#file-sha256").inner_text() == digest
    page.get_by_label("Justification").fill("reading the bank records for RG 1234/2026")
    check_page(page, "case-evidence")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "records.pdf"
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest


def _shots() -> Path | None:
    from tests.e2e.conftest import SCREENSHOTS

    if not SCREENSHOTS:
        return None
    Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    return Path(SCREENSHOTS)


def test_case_pages_at_tablet_width(page: Any, api: Any) -> None:
    from tests.integration.test_case_helpers import to_transmitted

    case = to_transmitted(api)
    _sign_in(page, "it.officer")
    page.set_viewport_size({"width": 768, "height": 1024})
    for path, name in (
        ("/cases", "cases-tablet"),
        (f"/cases/{case['id']}", "case-tablet"),
        ("/cases/new?workflow=mla.request&counterpart=us.central-authority", "case-new-tablet"),
    ):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways at 768 px"
        check_page(page, name)
