"""The audit explorer's pages: the latest checkpoint with its cosignatures, entries filtered
by kind, participant, case, message and time and paged newest first, one entry with its leaf
and inclusion proof, and the consistency proofs the browser's check asks for.

What a page carries is checked here with the Python verifier (audit/): the browser's own
check of the same data runs in tests/e2e/test_audit_flow.py. Who sees what is the API's rule
(AUDIT.md): oversight every entry, a participant's people only its own."""

from __future__ import annotations

import base64
import html
import re
from typing import Any

import pytest
from sqlalchemy import Engine, text

from audit import Ed25519Verifier, leaf_hash, open_checkpoint, verify_consistency, verify_inclusion
from tests.conftest import Api
from tests.integration.audit_helpers import run_scenario, sequence, verifier_key
from tests.integration.test_case_helpers import open_case
from tests.integration.web_helpers import Browser

ROW = re.compile(
    r'<tr data-entry-index="(\d+)" data-tree-size="(\d+)" data-proof="([^"]*)">(.*?)</tr>', re.S
)


def _page(api: Api, login: str, path: str, expect: int = 200) -> str:
    browser = Browser(api.client)
    api.client.cookies.clear()
    browser.sign_in(login)
    r = browser.get(path)
    api.client.cookies.clear()
    assert r.status_code == expect, r.text
    text: str = r.text
    return text


def _rows(page: str) -> list[dict[str, Any]]:
    rows = []
    for index, size, proof, cells in ROW.findall(page):
        leaf = re.search(r'<pre class="leaf">(.*?)</pre>', cells, re.S)
        assert leaf is not None
        kind = re.search(r'data-leaf-field="kind"><code>([^<]*)</code>', cells)
        assert kind is not None
        rows.append(
            {
                "index": int(index),
                "size": int(size),
                "proof": [base64.b64decode(h) for h in proof.split()],
                "leaf": html.unescape(leaf.group(1)).encode(),
                "kind": kind.group(1),
            }
        )
    return rows


def _note(page: str) -> str:
    match = re.search(r'<pre id="checkpoint-note" class="note">(.*?)</pre>', page, re.S)
    assert match is not None
    return html.unescape(match.group(1))


def _verified(api: Api, page: str) -> list[dict[str, Any]]:
    """The page's rows, each checked against the page's checkpoint with the Python verifier."""
    checkpoint = open_checkpoint(
        _note(page),
        Ed25519Verifier.from_vkey(verifier_key(api.settings)),
        origin=api.settings.node_id,
    )
    rows = _rows(page)
    for row in rows:
        assert row["size"] == checkpoint.size
        verify_inclusion(
            row["index"],
            checkpoint.size,
            leaf_hash(row["leaf"]),
            row["proof"],
            checkpoint.root_hash,
        )
    return rows


def test_oversight_pages_through_every_entry_newest_first_with_proofs_that_verify(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_scenario(api)
    size = api.get("/v1/audit/checkpoint", as_="oversight").json()["size"]
    monkeypatch.setattr("broker.web.audit_views.EXPLORER_PAGE", 4)
    page = _page(api, "oversight", "/audit")
    assert f'data-checkpoint-size="{size}"' in page
    assert 'data-origin="test.palermo"' in page
    seen = []
    path: str | None = "/audit"
    while path is not None:
        page = _page(api, "oversight", path)
        rows = _verified(api, page)
        assert 0 < len(rows) <= 4
        seen += [r["index"] for r in rows]
        more = re.search(r'href="(/audit\?before=\d+)" rel="next"', page)
        path = html.unescape(more.group(1)) if more else None
    assert seen == list(range(size - 1, -1, -1))


def test_an_officer_sees_the_entries_of_their_own_participant_only(api: Api) -> None:
    run_scenario(api)
    page = _page(api, "it.officer", "/audit")
    shown = sorted(r["index"] for r in _verified(api, page))
    api_view = api.get("/v1/audit/entries", as_="it.officer").json()
    assert shown == [e["index"] for e in api_view["entries"]]
    everything = api.get("/v1/audit/entries", as_="oversight").json()["entries"]
    assert len(shown) < len(everything)
    assert "The entries about your agency" in page


def test_filters_by_kind_message_participant_case_and_time(api: Api) -> None:
    scenario = run_scenario(api)
    case = open_case(api)
    sequence(api.settings)

    rows = _rows(_page(api, "oversight", "/audit?kind=message:delivered"))
    assert rows
    assert {r["kind"] for r in rows} == {"message:delivered"}

    first = scenario.message_ids[0]
    rows = _rows(_page(api, "oversight", f"/audit?message={first}"))
    assert {r["kind"] for r in rows} >= {"message:accepted", "message:delivered"}
    assert all(first.encode() in r["leaf"] for r in rows)

    rows = _rows(_page(api, "oversight", f"/audit?case={case['id']}"))
    assert [r["kind"] for r in rows] == ["case:opened"]

    mine = {e["index"] for e in api.get("/v1/audit/entries", as_="it.officer").json()["entries"]}
    rows = _rows(_page(api, "oversight", "/audit?participant=it.central-authority"))
    assert {r["index"] for r in rows} == mine

    assert _rows(_page(api, "oversight", "/audit?from=2000-01-01&to=2000-01-31")) == []
    page = _page(api, "oversight", "/audit?from=2000-01-01&kind=message:accepted")
    assert len(_rows(page)) == len(scenario.message_ids)
    assert "Clear the filters" in page


def test_an_officer_filtering_on_another_participant_sees_nothing_of_it(api: Api) -> None:
    run_scenario(api)
    rows = _rows(_page(api, "it.officer", "/audit?kind=message:refused"))
    assert rows == []  # de.bka's refused message stays de.bka's


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ("kind=message:shredded", "filter-kind", "Choose a kind from the list"),
        ("case=RG-1234", "filter-case", "Enter a case id"),
        ("message=42", "filter-message", "Enter a message id"),
        ("from=01/12/2026", "filter-from", "Enter a date as YYYY-MM-DD"),
        ("from=2026-12-02&to=2026-12-01", "filter-to", "The end date must be on or after"),
        ("participant=it%20dna", "filter-participant", "Enter a participant id"),
    ],
)
def test_bad_filters_get_an_error_summary_linking_to_the_field(
    api: Api, query: str, field: str, says: str
) -> None:
    run_scenario(api, messages=1)
    page = _page(api, "oversight", f"/audit?{query}", expect=422)
    assert 'class="error-summary"' in page
    assert f'href="#{field}"' in page
    assert says in page
    assert _rows(page) == []


def test_an_entry_page_shows_its_leaf_and_proof(api: Api) -> None:
    run_scenario(api, messages=1)
    page = _page(api, "oversight", "/audit/entries/0")
    rows = re.search(
        r'<section data-entry-index="0" data-tree-size="(\d+)" data-proof="([^"]*)"', page
    )
    assert rows is not None
    leaf = re.search(r'<pre class="leaf">(.*?)</pre>', page, re.S)
    assert leaf is not None
    data = html.unescape(leaf.group(1)).encode()
    checkpoint = open_checkpoint(
        _note(page), Ed25519Verifier.from_vkey(verifier_key(api.settings)), origin="test.palermo"
    )
    proof = [base64.b64decode(h) for h in rows.group(2).split()]
    verify_inclusion(0, checkpoint.size, leaf_hash(data), proof, checkpoint.root_hash)
    assert base64.b64encode(leaf_hash(data)).decode() in page
    assert "RFC 9162 inclusion proof" in page


def test_an_entry_out_of_sight_or_beyond_the_log_is_not_found(api: Api) -> None:
    run_scenario(api, messages=1)
    refused = _rows(_page(api, "oversight", "/audit?kind=message:refused"))[0]["index"]
    _page(api, "it.officer", f"/audit/entries/{refused}", expect=404)
    _page(api, "oversight", "/audit/entries/100000", expect=422)


def test_the_consistency_proof_the_browser_asks_for_verifies(api: Api) -> None:
    scenario = run_scenario(api)
    key = Ed25519Verifier.from_vkey(verifier_key(api.settings))
    old, new = (
        open_checkpoint(note, key, origin="test.palermo")
        for note in (scenario.checkpoints[1], scenario.checkpoints[-1])
    )
    browser = Browser(api.client)
    browser.sign_in("oversight")
    r = browser.get(f"/audit/consistency?old={old.size}&new={new.size}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["old"], body["new"]) == (old.size, new.size)
    hashes = [base64.b64decode(h) for h in body["hashes"]]
    verify_consistency(old.size, new.size, hashes, old.root_hash, new.root_hash)
    assert browser.get("/audit/consistency?old=0").status_code == 422
    assert browser.get(f"/audit/consistency?old={new.size + 1}").status_code == 422


def test_before_the_first_checkpoint_the_page_says_so(api: Api) -> None:
    page = _page(api, "oversight", "/audit")
    assert "No checkpoint has been published yet" in page


def test_an_entry_page_shows_the_texts_its_leaf_commits_to_while_kept(
    api: Api, sync_engine: Engine
) -> None:
    """A purpose is not in the leaf; the entry page shows it beside the leaf while it is
    kept, checked against the commitment, and says so when a kept text was changed."""
    run_scenario(api, messages=1)
    index = _rows(_page(api, "oversight", "/audit?kind=message:accepted"))[0]["index"]
    with sync_engine.connect() as c:
        purpose = c.execute(
            text(
                "SELECT t.text FROM audit_texts t JOIN audit_events e ON e.event_id = t.event_id "
                "JOIN audit_log l ON l.event_ref = e.id WHERE l.idx = :i AND t.field = 'purpose'"
            ),
            {"i": index},
        ).scalar_one()
    page = _page(api, "oversight", f"/audit/entries/{index}")
    assert "Texts kept beside the leaf" in page
    assert html.escape(purpose) in page
    assert "Matches the commitment" in page
    with sync_engine.begin() as c:
        c.execute(text("UPDATE audit_texts SET text = 'something else' WHERE field = 'purpose'"))
    page = _page(api, "oversight", f"/audit/entries/{index}")
    assert "Does not match the commitment" in page
