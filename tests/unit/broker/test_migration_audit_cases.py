"""Revision 0010 on a database whose log already holds entries: the entries whose leaf names
a case are indexed in ``audit_entry_cases``, the others are not, and the new table is
append-only like the rest of the log."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from broker.core import migrate
from broker.core.db import make_sync_engine

AT = "2026-01-02 03:04:05.123456"
LEAVES = [
    b'{"case_id":"c-1","event_id":"e0","kind":"case:opened","v":1}',
    b'{"event_id":"e1","kind":"message:accepted","message_id":"m-1","v":1}',
    b'{"case_id":"c-1","event_id":"e2","kind":"case:transition","v":1}',
    b'{"case_id":"c-2","event_id":"e3","kind":"content:consulted","v":1}',
]


def test_existing_entries_are_indexed_by_their_case(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = migrate.alembic_config(url)
    command.upgrade(cfg, "0009")
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        for idx, leaf in enumerate(LEAVES):
            conn.execute(
                sa.text(
                    "INSERT INTO audit_events (id, event_id, kind, created_at, leaf) "
                    "VALUES (:id, :e, 'k', :at, :leaf)"
                ),
                {"id": idx + 1, "e": f"e{idx}", "at": AT, "leaf": leaf},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (idx, event_ref, leaf_hash, sequenced_at) "
                    "VALUES (:idx, :ref, :h, :at)"
                ),
                {"idx": idx, "ref": idx + 1, "h": b"h" * 32, "at": AT},
            )
    engine.dispose()

    command.upgrade(cfg, "head")

    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT case_id, idx FROM audit_entry_cases ORDER BY idx")
            ).all()
        assert [tuple(r) for r in rows] == [("c-1", 0), ("c-1", 2), ("c-2", 3)]
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM audit_entry_cases"))
    finally:
        engine.dispose()
