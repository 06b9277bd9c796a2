"""Audit leaves: written with their event, append-only in the database itself, and free of
content and of people in clear (AUDIT.md; LED art. 25)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from broker.core.settings import Settings
from tests.conftest import Api, count_rows
from tests.integration.audit_helpers import sequence
from tests.integration.messaging_helpers import envelope, relay

# Every audit table, and a column to "update" in it (an UPDATE that changes nothing is
# refused all the same).
APPEND_ONLY = {
    "audit_events": "kind",
    "audit_log": "leaf_hash",
    "audit_nodes": "hash",
    "audit_entry_parties": "participant_id",
    "audit_entry_cases": "case_id",
    "audit_checkpoints": "note",
    "audit_cosignatures": "line",
}


@pytest.fixture
def filled(settings: Settings, sync_engine: Engine) -> Engine:
    """A database with a row in every audit table: sequenced, with one cosignature."""
    sequence(settings)
    with sync_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_cosignatures (checkpoint_size, witness_name, witness_key_id, "
                "timestamp, line, witness_url, received_at) SELECT size, 'w', 1, 0, 'x', 'u', "
                "created_at FROM audit_checkpoints"
            )
        )
        # The requests relayed here open no case: an entry of the case index by hand.
        conn.execute(text("INSERT INTO audit_entry_cases (case_id, idx) VALUES ('c', 0)"))
    return sync_engine


@pytest.mark.parametrize("operation", ["UPDATE", "DELETE"])
@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
def test_audit_rows_refuse_update_and_delete(filled: Engine, table: str, operation: str) -> None:
    before = count_rows(filled, table)
    assert before > 0
    column = APPEND_ONLY[table]
    statement = (
        f"UPDATE {table} SET {column} = {column}"
        if operation == "UPDATE"
        else f"DELETE FROM {table}"
    )
    with pytest.raises(DBAPIError, match="append-only"), filled.begin() as conn:
        conn.execute(text(statement))
    assert count_rows(filled, table) == before


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
def test_audit_tables_refuse_truncate_on_postgresql(filled: Engine, table: str) -> None:
    if filled.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE statement; DELETE is refused above")
    # CASCADE, so that it is the trigger that refuses, not a foreign key.
    with pytest.raises(DBAPIError, match="append-only"), filled.begin() as conn:
        conn.execute(text(f"TRUNCATE {table} CASCADE"))
    with filled.connect() as conn:
        enabled = conn.execute(
            text(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"
            ),
            {"t": table},
        ).all()
    # 'A': enabled ALWAYS, so session_replication_role = replica does not skip them.
    assert {row[1] for row in enabled} == {"A"}
    names = {row[0] for row in enabled}
    assert {f"{table}_no_update", f"{table}_no_truncate"} <= names
    assert names - {f"{table}_no_update", f"{table}_no_truncate"} == (
        {"audit_events_enqueue"} if table == "audit_events" else set()
    )


def test_every_leaf_is_queued_for_the_sequencer_in_its_own_transaction(
    sync_engine: Engine,
) -> None:
    events = count_rows(sync_engine, "audit_events")
    assert events > 0
    assert count_rows(sync_engine, "audit_unsequenced") == events
    insert_one = text(
        "INSERT INTO audit_events (event_id, kind, created_at, leaf) "
        "VALUES (:e, 'k', CURRENT_TIMESTAMP, :leaf)"
    )
    with sync_engine.connect() as conn:
        conn.begin()
        conn.execute(insert_one, {"e": "rolled-back", "leaf": b"{}"})
        conn.rollback()
        conn.begin()
        conn.execute(insert_one, {"e": "committed", "leaf": b"{}"})
        conn.commit()
    assert count_rows(sync_engine, "audit_unsequenced") == events + 1
    with sync_engine.connect() as conn:
        queued = conn.execute(
            text(
                "SELECT e.event_id FROM audit_unsequenced q JOIN audit_events e "
                "ON e.id = q.event_ref ORDER BY q.event_ref DESC LIMIT 1"
            )
        ).scalar_one()
    assert queued == "committed"


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
