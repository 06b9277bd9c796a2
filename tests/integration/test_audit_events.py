"""Audit leaves: written with their event, append-only in the database itself, and free of
content and of people in clear (AUDIT.md; LED art. 25)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope, relay


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET kind = 'message:accepted'",
        "DELETE FROM audit_events",
    ],
)
def test_audit_rows_refuse_update_and_delete(sync_engine: Engine, statement: str) -> None:
    before = count_rows(sync_engine, "audit_events")
    assert before > 0
    with pytest.raises(DBAPIError, match="append-only"), sync_engine.begin() as conn:
        conn.execute(text(statement))
    assert count_rows(sync_engine, "audit_events") == before


def test_audit_table_refuses_truncate_on_postgresql(sync_engine: Engine) -> None:
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE statement; DELETE is refused above")
    with pytest.raises(DBAPIError, match="append-only"), sync_engine.begin() as conn:
        conn.execute(text("TRUNCATE audit_events"))
    with sync_engine.connect() as conn:
        enabled = conn.execute(
            text(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal"
            )
        ).all()
    # 'A': enabled ALWAYS, so session_replication_role = replica does not skip them.
    assert {row[1] for row in enabled} == {"A"}
    assert len(enabled) == 2


def test_leaves_hold_metadata_and_digests_never_content(api: Api, sync_engine: Engine) -> None:
    key = api.world.keys["de.bka"]
    secret_words = ["MARIA LUISA", "Genoa", "Giuseppe Verdi", "IT60X0542811101000000123456"]
    env = envelope(
        key,
        body={
            "summary": "Vessel MARIA LUISA due in Genoa",
            "suspect": "Giuseppe Verdi",
            "iban": "IT60X0542811101000000123456",
        },
        data_subjects=[{"ref": "p1", "category": "suspect"}],
    )
    message_id = api.post("/v1/messages", as_="de.system", json=env).json()["id"]
    relay(api.settings)
    api.get(
        f"/v1/messages/{message_id}/content",
        as_="it.officer",
        params={"justification": "checking the vessel alert"},
    )
    api.post(f"/v1/messages/{message_id}/receipt", as_="it.officer", content=b"")
    with sync_engine.connect() as conn:
        leaves = [bytes(r[0]) for r in conn.execute(text("SELECT leaf FROM audit_events")).all()]
    kinds = [json.loads(leaf)["kind"] for leaf in leaves]
    for kind in ("message:accepted", "message:delivered", "content:consulted", "message:receipted"):
        assert kinds.count(kind) == 1, kinds
    for leaf in leaves:
        text_of_leaf = leaf.decode()
        for word in secret_words:
            assert word not in text_of_leaf
        decoded = json.loads(leaf)
        assert leaf == json.dumps(decoded, sort_keys=True, separators=(",", ":")).encode()
