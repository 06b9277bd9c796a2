"""Compose, check and send through the web app, and the inbox and sent filters."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine

from tests.conftest import Api, World, count_rows
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.web_helpers import Browser

GOOD: dict[str, str] = {
    "type": "intel.message",
    "recipient": "nl.fiu",
    "legal_basis": "UNTOC art. 27",
    "purpose": "investigation RG 1234/2026",
    "handling_code": "H0",
    "reliability": "B",
    "validity": "2",
    "statement_kind": "fact",
    "data_categories": "vessel-movement",
    "subject-0-ref": "P-1",
    "subject-0-category": "suspect",
    "text": "Vessel MARIA LUISA expected in Genoa on 3 December",
}


def _compose(browser: Browser, action: str, **over: str) -> Any:
    data = {**GOOD, **over, "action": action}
    return browser.submit("/compose", "/compose", {k: v for k, v in data.items() if v})


def test_the_form_offers_the_types_of_the_participant(api: Api) -> None:
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    page = officer.get("/compose")
    assert page.status_code == 200
    assert 'value="intel.message"' in page.text
    assert 'value="fiu.disclosure"' not in page.text
    assert 'name="csrf_token"' in page.text


def test_check_shows_the_refusal_with_its_citation_and_keeps_the_input(
    api: Api, sync_engine: Engine
) -> None:
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    leaves = count_rows(sync_engine, "audit_events")
    checked = _compose(officer, "check", handling_code="", reliability="")
    assert checked.status_code == 422
    assert "P12.code-required" in checked.text
    assert "SIENA handling codes" in checked.text
    assert 'href="#f-handling_code"' in checked.text
    assert 'href="#f-reliability"' in checked.text
    assert "Vessel MARIA LUISA expected in Genoa" in checked.text
    assert 'value="UNTOC art. 27"' in checked.text
    # A dry run: nothing stored, no audit leaf.
    assert count_rows(sync_engine, "messages") == 0
    assert count_rows(sync_engine, "audit_events") == leaves


def test_check_then_send_and_the_recipient_finds_it_by_type(
    api: Api, settings: Any, sync_engine: Engine
) -> None:
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    checked = _compose(officer, "check")
    assert checked.status_code == 200, checked.text
    assert "Permitted" in checked.text
    assert count_rows(sync_engine, "messages") == 0
    sent = _compose(officer, "send")
    assert sent.status_code == 303, sent.text
    message_id = re.search(r"/messages/([0-9a-f-]{36})", sent.headers["location"]).group(1)  # type: ignore[union-attr]
    assert officer.get(sent.headers["location"]).status_code == 200
    assert message_id in officer.get("/sent?type=intel.message").text
    assert message_id not in officer.get("/sent?type=fiu.disclosure").text
    relay(settings)
    officer.get("/sign-out")
    recipient = Browser(api.client)
    api.client.cookies.clear()
    recipient.sign_in("nl.officer")
    assert message_id in recipient.get("/inbox?type=intel.message").text
    assert message_id in recipient.get("/inbox?counterpart=it.central-authority").text
    assert message_id not in recipient.get("/inbox?counterpart=de.bka").text
    assert message_id in recipient.get("/inbox?status=delivered&handling=H0").text
    assert message_id not in recipient.get("/inbox?handling=H2").text


def test_a_schema_error_points_at_its_field(api: Api) -> None:
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    page = _compose(officer, "send", recipient="")
    assert page.status_code == 422
    assert 'href="#f-recipient"' in page.text


def test_a_blank_purpose_points_at_its_field(api: Api, sync_engine: Engine) -> None:
    """Declared means declared (LED art. 4(1)(b)): the form takes the payload schema's rule."""
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    before = count_rows(sync_engine, "messages")
    page = _compose(officer, "send", purpose="\u200b\u00a0\u3000")
    assert page.status_code == 422
    assert 'href="#f-purpose"' in page.text
    assert count_rows(sync_engine, "messages") == before


def test_inbox_filters_and_paging_keep_the_filter(api: Api, world: World, settings: Any) -> None:
    ids = [
        api.post("/v1/messages", as_="de.system", json=envelope(world.keys["de.bka"])).json()["id"]
        for _ in range(2)
    ]
    other = api.post(
        "/v1/messages",
        as_="de.system",
        json=envelope(world.keys["de.bka"], handling={"code": "H2"}),
    ).json()["id"]
    relay(settings)
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    h0 = officer.get("/inbox?handling=H0").text
    assert all(i in h0 for i in ids)
    assert other not in h0
    h2 = officer.get("/inbox?handling=H2").text
    assert other in h2
    assert not any(i in h2 for i in ids)
    assert 'value="H2" selected' in h2
    assert "Clear the filters" in h2
    none = officer.get("/inbox?type=fiu.disclosure").text
    assert "No message matches these filters." in none


def test_special_categories_need_the_basis_chosen_in_the_form(
    api: Api, sync_engine: Engine
) -> None:
    """LED art. 10 in the browser: health data without a basis is refused on the page, with
    the rule, its citation and a link to the categories it names; with the basis chosen it goes; an
    unknown category is named on the page."""
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    bare = _compose(officer, "check", data_categories="Health")
    assert bare.status_code == 422, bare.text
    assert "LED10.special-categories" in bare.text
    assert "LED art. 10" in bare.text
    assert 'href="#f-data_categories"' in bare.text
    assert 'id="f-special_category_basis"' in bare.text
    based = _compose(
        officer, "check", data_categories="Health", special_category_basis="authorised_by_law"
    )
    assert based.status_code == 200, based.text
    assert 'value="authorised_by_law" selected' in based.text
    unknown = _compose(officer, "check", data_categories="gossip")
    assert unknown.status_code == 422
    assert "is not a data category" in unknown.text
    assert 'href="#f-data_categories"' in unknown.text
    assert count_rows(sync_engine, "messages") == 0


def test_the_rules_speak_the_readers_language(api: Api, sync_engine: Engine) -> None:
    """A refusal in French shows the rule's text in French, its id and citation as the pack
    writes them; the permitting rules of a check in Spanish are in Spanish."""
    officer = Browser(api.client)
    officer.sign_in("it.officer")
    officer.client.cookies.set("palermo_lang", "fr")
    bare = _compose(officer, "check", data_categories="Health")
    assert bare.status_code == 422, bare.text
    assert "La politique refuserait ce message" in bare.text
    assert "LED10.special-categories" in bare.text
    assert "LED art. 10" in bare.text
    assert "Les catégories particulières de données personnelles" in bare.text
    assert "Special categories of personal data" not in bare.text
    officer.client.cookies.set("palermo_lang", "es")
    based = _compose(
        officer, "check", data_categories="Health", special_category_basis="authorised_by_law"
    )
    assert based.status_code == 200, based.text
    assert "Un intercambio entre dos participantes registrados y activos" in based.text
    assert "An exchange between two registered" not in based.text
    assert count_rows(sync_engine, "messages") == 0
