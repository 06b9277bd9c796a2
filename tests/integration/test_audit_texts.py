"""Justifications and review reasons are personal data too: a leaf commits to them (a salted
SHA-256), the text lives in ``audit_texts``, oversight reads it while it is kept, and it goes
with the item it is about (docs/audit.md "What a leaf holds"; LED art. 25, P17)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from tests.conftest import Api, count_rows
from tests.integration.audit_helpers import kept_text
from tests.integration.messaging_helpers import envelope
from tests.integration.test_retention import (
    OFFICER,
    assert_log_verifies,
    assert_nowhere,
    at,
    erase_at,
    is_sqlite,
    send,
)
from tests.integration.web_helpers import Browser

WHY = "checking the courier route for RG 1234/2026, named Mario Rossi"


def _consulted(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'content:consulted' ORDER BY id")
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def test_a_justification_is_kept_beside_its_leaf_and_erased_with_the_message(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    message = send(api)
    mid = message["id"]
    r = api.get(f"/v1/messages/{mid}/content", as_=OFFICER, params={"justification": WHY})
    assert r.status_code == 200
    (leaf,) = _consulted(sync_engine)
    assert "justification" not in leaf
    assert kept_text(sync_engine, leaf, "justification") == WHY
    browser = Browser(api.client)
    assert browser.sign_in("oversight").status_code == 303
    assert WHY in browser.get("/oversight/consultations").text

    erase_at(api, at(message["retention_until"]))
    assert kept_text(sync_engine, leaf, "justification") is None
    page = browser.get("/oversight/consultations").text
    assert WHY not in page
    assert "Erased with the item read" in page
    assert_log_verifies(api, tmp_path)  # the leaf, with its commitment, is unchanged
    if is_sqlite(api):
        assert_nowhere(api, [WHY.encode()])


def test_an_export_justification_has_its_own_deadline(api: Api, sync_engine: Engine) -> None:
    send(api)
    r = api.get("/v1/messages/export", as_="de.system", params={"justification": WHY})
    assert r.status_code == 200, r.text
    (leaf,) = [x for x in _consulted(sync_engine) if x.get("object") == "export"]
    assert kept_text(sync_engine, leaf, "justification") == WHY
    made = dt.datetime.fromisoformat(leaf["time"].replace("Z", "+00:00"))
    erase_at(api, made + dt.timedelta(days=1825))
    assert count_rows(sync_engine, "audit_texts", "field = 'justification'") == 1
    erase_at(api, made + dt.timedelta(days=1826))
    assert kept_text(sync_engine, leaf, "justification") is None


PURPOSE = "investigation RG 1234/2026 into Mario Rossi"


def _leaves(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY id"), {"k": kind}
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def test_a_purpose_is_committed_in_the_leaf_and_erased_with_the_message(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    """Item 6: a declared purpose may name a person, so the ``message:accepted`` leaf carries
    ``purpose_commitment``, the text is kept beside it, both parties still see the purpose,
    and erasure takes it from the row, the terms and ``audit_texts``."""
    message = send(api, purpose=PURPOSE)
    mid = message["id"]
    assert message["purpose"] == PURPOSE
    (leaf,) = [x for x in _leaves(sync_engine, "message:accepted") if x["message_id"] == mid]
    assert kept_text(sync_engine, leaf, "purpose") == PURPOSE
    assert PURPOSE not in json.dumps(leaf)

    erase_at(api, at(message["retention_until"]))
    assert kept_text(sync_engine, leaf, "purpose") is None
    with sync_engine.connect() as c:
        row = c.execute(text("SELECT purpose FROM messages WHERE id = :m"), {"m": mid}).one()
        terms = c.execute(
            text(
                "SELECT original_purpose, permitted_purposes FROM message_terms "
                "WHERE message_id = :m"
            ),
            {"m": mid},
        ).all()
    assert row[0] is None
    for original, permitted in terms:
        assert original is None
        assert json.loads(permitted) in ([], "[]")
    r = api.get(f"/v1/messages/{mid}", as_=OFFICER)
    assert r.status_code == 200
    assert r.json()["purpose"] is None
    assert_log_verifies(api, tmp_path)  # the leaf, with its commitment, is unchanged
    if is_sqlite(api):
        assert_nowhere(api, [PURPOSE.encode()])


def test_a_refused_message_keeps_its_purpose_for_the_default_retention(
    api: Api, sync_engine: Engine
) -> None:
    """A refused message is never stored, so nothing erases it: its purpose's text has the
    node's default message retention of its own (P17)."""
    key = api.world.keys["de.bka"]
    r = api.post(
        "/v1/messages",
        as_="de.system",
        json=envelope(key, purpose=PURPOSE, recipient="fr.suspended"),
    )
    assert r.status_code == 403, r.text
    (leaf,) = _leaves(sync_engine, "message:refused")
    assert kept_text(sync_engine, leaf, "purpose") == PURPOSE
    made = dt.datetime.fromisoformat(leaf["time"].replace("Z", "+00:00"))
    days = api.settings.retention_message_days
    erase_at(api, made + dt.timedelta(days=days) - dt.timedelta(seconds=1))
    assert kept_text(sync_engine, leaf, "purpose") == PURPOSE
    erase_at(api, made + dt.timedelta(days=days))
    assert kept_text(sync_engine, leaf, "purpose") is None
