"""Forwarding and consents in the web app: a forward is checked, then sent or refused with
its rules and citations; the refusal offers the consent request; the provider answers on the
consent's page; after a grant the requester forwards."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from broker.app import create_app
from broker.core.settings import Settings
from tests.conftest import Api, count_rows
from tests.integration.test_exculpatory import evidence_received
from tests.integration.test_forward import FIU_DISCLOSURE, delivered
from tests.integration.web_helpers import Browser

PURPOSE = FIU_DISCLOSURE["purpose"]


@pytest.fixture
def officer(api: Api) -> Browser:
    browser = Browser(api.client)
    browser.sign_in("it.officer")
    return browser


@pytest.fixture
def provider(settings: Settings) -> Iterator[Browser]:
    with TestClient(create_app(settings)) as client:
        browser = Browser(client)
        browser.sign_in("nl.officer")
        yield browser


def _forward(browser: Browser, message_id: str, recipient: str, purpose: str = PURPOSE) -> object:
    page = f"/messages/{message_id}/forward"
    data = {"recipient": recipient, "purpose": purpose, "legal_basis": ""}
    check = browser.submit(page, page, data)
    assert check.status_code == 200, check.text
    assert "Check before you forward" in check.text
    return browser.submit(page, page, {**data, "confirm": "yes"})


def test_a_permitted_forward_is_checked_then_sent(
    officer: Browser, api: Api, sync_engine: Engine
) -> None:
    original = delivered(api, "nl.officer", {**FIU_DISCLOSURE, "permitted_recipients": ["de.bka"]})
    page = officer.get(f"/messages/{original}")
    assert f'href="/messages/{original}/forward"' in page.text
    before = count_rows(sync_engine, "messages")
    r = _forward(officer, original, "de.bka")
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    sent = officer.get(r.headers["location"])  # type: ignore[attr-defined]
    assert "The forward was permitted and sent" in sent.text
    assert count_rows(sync_engine, "messages") == before + 1
    forwarded = re.search(r'href="/messages/([0-9a-f-]{36})">Open the forward', sent.text)
    assert forwarded
    read = api.get(f"/v1/messages/{forwarded.group(1)}", as_="it.officer").json()
    assert read["recipient"] == "de.bka"


def test_form_errors_keep_the_input_and_send_nothing(
    officer: Browser, api: Api, sync_engine: Engine
) -> None:
    original = delivered(api, "nl.officer", FIU_DISCLOSURE)
    before = count_rows(sync_engine, "messages")
    page = f"/messages/{original}/forward"
    r = officer.submit(page, page, {"recipient": "", "purpose": "kept purpose"})
    assert r.status_code == 422
    assert 'href="#recipient"' in r.text
    assert 'value="kept purpose"' in r.text
    assert count_rows(sync_engine, "messages") == before


def test_an_exculpatory_forward_with_late_notice_goes_with_its_follow_up(
    officer: Browser, api: Api
) -> None:
    """P5 (UNTOC art. 18(19)): the form's late-notice box reaches the payload's
    ``late_notice``, as on ``POST /v1/messages/{id}/forward``."""
    _, original = evidence_received(api)
    page = f"/messages/{original}/forward"
    form = officer.get(page).text
    assert 'name="late_notice"' in form
    assert re.search(r'id="late_notice-hint">[^<]*<span class="citation">UNTOC art. 18\(19\)', form)
    data = {"recipient": "de.bka", "purpose": "exculpatory_disclosure", "legal_basis": ""}
    refused = officer.submit(page, page, {**data, "confirm": "yes"})
    assert refused.status_code == 403
    assert "P5.notice" in refused.text
    check = officer.submit(page, page, {**data, "late_notice": "yes"})
    assert check.status_code == 200
    assert "Late notice" in check.text
    assert 'name="late_notice" value="yes"' in check.text  # carried to the second post
    sent = officer.submit(page, page, {**data, "late_notice": "yes", "confirm": "yes"})
    assert sent.status_code == 303, sent.text
    forward_id = sent.headers["location"].rsplit("id=", 1)[1]
    shown = api.get(f"/v1/messages/{forward_id}", as_="it.officer").json()
    assert "P5.late" in str(shown), shown


def test_the_sender_may_not_forward_and_others_do_not_see_it(
    provider: Browser, api: Api, settings: Settings
) -> None:
    original = delivered(api, "nl.officer", FIU_DISCLOSURE)
    assert provider.get(f"/messages/{original}/forward").status_code == 403
    with TestClient(create_app(settings)) as client:
        other = Browser(client)
        other.sign_in("us.officer")
        assert other.get(f"/messages/{original}/forward").status_code == 404
        assert other.get(f"/messages/{original}/consent-request").status_code == 404


def test_refused_forward_consent_refused_asked_again_granted_then_forwarded(
    officer: Browser, provider: Browser, api: Api, sync_engine: Engine
) -> None:
    original = delivered(api, "nl.officer", FIU_DISCLOSURE)
    refused = _forward(officer, original, "de.bka")
    assert refused.status_code == 403  # type: ignore[attr-defined]
    text = refused.text  # type: ignore[attr-defined]
    assert "The forward was refused" in text
    assert "P18.named-recipients" in text
    assert 'class="citation"' in text
    # The consent request form is prefilled with the refused recipient and purpose.
    assert 'action="/messages/' + original + '/consent-request"' in text
    assert '<option value="de.bka" selected' in text
    assert f'value="{PURPOSE}"' in text

    ask_page = f"/messages/{original}/consent-request?recipient=de.bka&purpose={PURPOSE}"
    empty = officer.submit(
        ask_page,
        f"/messages/{original}/consent-request",
        {"recipient": "de.bka", "purpose": PURPOSE, "reasons": ""},
    )
    assert empty.status_code == 422
    assert 'href="#consent-reasons"' in empty.text

    def ask() -> str:
        r = officer.submit(
            ask_page,
            f"/messages/{original}/consent-request",
            {"recipient": "de.bka", "purpose": PURPOSE, "reasons": "joint investigation"},
        )
        assert r.status_code == 303, r.text
        return str(r.headers["location"]).split("?")[0]

    consent_page = ask()
    consent_id = consent_page.rsplit("/", 1)[1]
    assert "Your request was signed and sent" in officer.get(consent_page + "?asked=1").text
    assert consent_page in officer.get("/consents").text
    # The requester cannot answer its own request.
    mine = officer.get(consent_page)
    assert "Grant consent" not in mine.text
    assert "Waiting for the provider" in mine.text

    listed = provider.get("/consents").text
    assert consent_page in listed.split("Asked by us")[0]
    no_reasons = provider.submit(consent_page, consent_page + "/refuse", {"reasons": ""})
    assert no_reasons.status_code == 422
    assert 'href="#refuse-reasons"' in no_reasons.text
    secrecy = provider.submit(
        consent_page, consent_page + "/refuse", {"reasons": "secret", "grounds": "bank_secrecy"}
    )
    assert secrecy.status_code == 403
    assert "FIU.refusal-grounds" in secrecy.text
    assert ">secret</textarea>" in secrecy.text
    r = provider.submit(
        consent_page, consent_page + "/refuse", {"reasons": "the analysis is still open"}
    )
    assert r.status_code == 303
    assert api.get(f"/v1/consents/{consent_id}", as_="it.officer").json()["status"] == "refused"
    seen = officer.get(consent_page).text
    assert "the analysis is still open" in seen
    assert "Ask again" in seen

    again = ask()
    assert again != consent_page
    r = provider.submit(again, again + "/grant", {"reasons": ""})
    assert r.status_code == 303, r.text
    granted = officer.get(again).text
    assert "Forward now" in granted
    # Answered once: a second answer is a conflict.
    assert provider.submit(again, again + "/refuse", {"reasons": "late"}).status_code == 409
    done = _forward(officer, original, "de.bka")
    assert done.status_code == 303  # type: ignore[attr-defined]
    assert count_rows(sync_engine, "consents", "status = 'granted'") == 1


def test_consent_pages_show_translated_states_and_errors(
    officer: Browser, provider: Browser, api: Api
) -> None:
    original = delivered(api, "nl.officer", FIU_DISCLOSURE)
    ask_page = f"/messages/{original}/consent-request?recipient=de.bka&purpose={PURPOSE}"
    officer.client.cookies.set("palermo_lang", "fr")
    empty = officer.submit(
        ask_page,
        f"/messages/{original}/consent-request",
        {"recipient": "de.bka", "purpose": PURPOSE, "reasons": ""},
    )
    assert empty.status_code == 422
    assert '<a href="#consent-reasons">Indiquez vos motifs</a>' in empty.text
    asked = officer.submit(
        ask_page,
        f"/messages/{original}/consent-request",
        {"recipient": "de.bka", "purpose": PURPOSE, "reasons": "joint investigation"},
    )
    consent_page = str(asked.headers["location"]).split("?")[0]
    page = officer.get(consent_page).text
    assert "En attente de réponse" in page
    assert "requested</span>" not in page
    assert "En attente de réponse" in officer.get("/consents").text

    provider.client.cookies.set("palermo_lang", "es")
    form = provider.get(consent_page).text
    assert '<label for="ground-bank_secrecy">Secreto bancario (nunca es un motivo, 18(8))' in form
    provider.submit(
        consent_page, consent_page + "/refuse", {"reasons": "el análisis sigue abierto"}
    )
    answered = provider.get(consent_page).text
    assert "Consentimiento denegado" in answered
    assert ">refused<" not in answered
