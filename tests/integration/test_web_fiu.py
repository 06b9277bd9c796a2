"""The FIU pages: goAML import (schema errors listed, nothing stored), goAML export as a
download after a justification, and anonymous matching that posts only keyed filters."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine

from adapters import goaml
from broker.fiu.filters import keyed_filters, new_exchange_key
from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import register_partner
from tests.integration.web_helpers import Browser, csrf_of

VECTORS = Path(__file__).parents[1] / "vectors" / "goaml"
STR = (VECTORS / "golden_STR.xml").read_bytes()
FIELDS = {
    "recipient": "it.central-authority",
    "purpose": "money laundering analysis",
    "legal_basis": "Egmont Principles",
}


def _upload(browser: Browser, xml: bytes, **over: str) -> object:
    token = csrf_of(browser.get("/fiu/goaml").text)
    return browser.client.post(
        "/fiu/goaml",
        data={"csrf_token": token, **FIELDS, **over},
        files={"report": ("report.xml", xml, "application/xml")},
        follow_redirects=False,
    )


def test_goaml_import_then_export_as_a_download(api: Api, sync_engine: Engine) -> None:
    fiu = Browser(api.client)
    fiu.sign_in("nl.officer")
    page = fiu.get("/fiu/goaml")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    r = _upload(fiu, STR)
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    message_id = r.headers["location"].rsplit("/", 1)[1]  # type: ignore[attr-defined]
    read = api.get(f"/v1/messages/{message_id}", as_="nl.officer").json()
    assert read["type"] == "fiu.disclosure"
    shown = fiu.get(f"/messages/{message_id}").text
    assert f'href="/messages/{message_id}/goaml"' in shown

    page = f"/messages/{message_id}/goaml"
    short = fiu.submit(page, page, {"justification": "why"})
    assert short.status_code == 422
    assert 'href="#justification"' in short.text
    done = fiu.submit(page, page, {"justification": "sending the report to our goAML system"})
    assert done.status_code == 200, done.text
    assert done.headers["content-type"].startswith("application/xml")
    assert "attachment" in done.headers["content-disposition"]
    assert goaml.decode(done.content) == goaml.decode(STR)
    assert count_rows(sync_engine, "audit_events", "kind = 'content:consulted'") == 1


def test_a_report_with_schema_errors_lists_them_and_stores_nothing(
    api: Api, sync_engine: Engine
) -> None:
    fiu = Browser(api.client)
    fiu.sign_in("nl.officer")
    before = count_rows(sync_engine, "messages")
    bad = STR.replace(b"<rentity_id>", b"<rentity_idx>", 1).replace(
        b"</rentity_id>", b"</rentity_idx>", 1
    )
    r = _upload(fiu, bad)
    assert r.status_code == 422  # type: ignore[attr-defined]
    text = r.text  # type: ignore[attr-defined]
    assert "does not match the goAML 5.0.2 schema" in text
    assert text.count("<li><code>") >= 1
    assert "Nothing was stored" in text
    assert 'value="money laundering analysis"' in text
    not_xml = _upload(fiu, b"<report><unclosed></report>")
    assert not_xml.status_code == 422  # type: ignore[attr-defined]
    assert "not well-formed" in not_xml.text  # type: ignore[attr-defined]
    missing = _upload(fiu, STR, purpose="")
    assert missing.status_code == 422  # type: ignore[attr-defined]
    assert 'href="#goaml-purpose"' in missing.text  # type: ignore[attr-defined]
    assert count_rows(sync_engine, "messages") == before


def test_only_a_disclosure_exports(api: Api) -> None:
    from tests.integration.test_forward import intel_from_bka

    message_id = intel_from_bka(api)
    fiu = Browser(api.client)
    fiu.sign_in("it.officer")
    page = f"/messages/{message_id}/goaml"
    r = fiu.submit(page, page, {"justification": "sending the report to our goAML system"})
    assert r.status_code == 422
    assert "Only an FIU disclosure" in r.text


def test_matching_posts_only_keyed_filters(api: Api, sync_engine: Engine) -> None:
    register_partner(api, "it.fiu", "fiu", {"it.analyst": "officer"})
    fiu = Browser(api.client)
    fiu.sign_in("nl.officer")
    page = fiu.get("/fiu/matches").text
    # Without JavaScript the page explains, and the form (hidden) has no named subject field.
    assert "Matching needs JavaScript" in page
    assert re.search(r"<form [^>]*data-matching hidden", page)
    assert not re.search(r'id="match-subjects"[^>]* name=', page)
    assert not re.search(r'id="match-key"[^>]* name=', page)
    assert '<script type="module" src="/static/matching.js">' in page

    key = new_exchange_key()
    filters = keyed_filters(key, ["Mario Rossi", "ACME Ltd"])
    data = {
        "counterpart": "it.fiu",
        "exchange_id": "nl-it-2026-01",
        "purpose": "money laundering analysis",
        "legal_basis": "Egmont Principles",
    }
    bad = fiu.submit("/fiu/matches", "/fiu/matches", {**data, "filters": "Mario Rossi"})
    assert bad.status_code == 422
    assert 'href="#match-filters"' in bad.text
    r = fiu.submit("/fiu/matches", "/fiu/matches", {**data, "filters": "\n".join(filters)})
    assert r.status_code == 303, r.text
    listed = fiu.get(r.headers["location"]).text
    assert "Only the keyed filters left your browser" in listed
    assert "nl-it-2026-01" in listed
    items = api.get("/v1/fiu/matches", as_="nl.officer").json()["items"]
    assert [i["filter_count"] for i in items] == [2]


def test_matching_is_between_fius(api: Api) -> None:
    browser = Browser(api.client)
    browser.sign_in("it.officer")
    data = {
        "counterpart": "nl.fiu",
        "exchange_id": "x",
        "purpose": "p",
        "legal_basis": "b",
        "filters": "a" * 64,
    }
    r = browser.submit("/fiu/matches", "/fiu/matches", data)
    assert r.status_code == 403


def test_goaml_errors_are_in_the_readers_language(api: Api, sync_engine: Engine) -> None:
    fiu = Browser(api.client)
    fiu.sign_in("nl.officer")
    fiu.client.cookies.set("palermo_lang", "fr")
    r = _upload(fiu, STR, legal_basis="")
    assert r.status_code == 422  # type: ignore[attr-defined]
    text = r.text  # type: ignore[attr-defined]
    assert '<a href="#goaml-legal_basis">Indiquez la base juridique de la communication</a>' in text
    assert ">legal_basis<" not in text
    assert count_rows(sync_engine, "messages") == 0
