"""Revision 0009 on a SQLite database that already holds messages: the batch rebuild of the
messages table (copy, drop, rename) keeps its rows and the rows that refer to them, and the
foreign keys are enforced again afterwards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command

from broker.core import migrate
from broker.core.db import make_sync_engine

ACCEPTED = "2026-01-02 03:04:05.123456"


def _fill(conn: sa.Connection, table: str, **over: Any) -> None:
    """A row with every NOT NULL column given a value of its type, and ``over``."""
    values: dict[str, Any] = {}
    for _cid, name, declared, notnull, _default, _pk in conn.exec_driver_sql(
        f"PRAGMA table_info({table})"
    ):
        if not notnull:
            continue
        kind = declared.upper()
        if "BLOB" in kind:
            values[name] = b"b"
        elif "INT" in kind or "BOOL" in kind:
            values[name] = 0
        elif "DATETIME" in kind or "TIMESTAMP" in kind:
            values[name] = ACCEPTED
        elif "JSON" in kind:
            values[name] = "[]"
        else:
            values[name] = "x"
    values.update(over)
    names = ",".join(values)
    marks = ",".join(f":{k}" for k in values)
    conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({marks})"), values)


def test_the_messages_table_is_rebuilt_with_its_references(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = migrate.alembic_config(url)
    command.upgrade(cfg, "0008")
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        _fill(conn, "participants", id="p1")
        _fill(conn, "messages", id="m1", sender_id="p1", recipient_id="p1", accepted_at=ACCEPTED)
        _fill(conn, "outbox", message_id="m1")
    engine.dispose()

    command.upgrade(cfg, "head")

    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            retention_until, erased_at = conn.execute(
                sa.text("SELECT retention_until, erased_at FROM messages WHERE id = 'm1'")
            ).one()
            assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()
    assert retention_until is None  # set on acceptance from now on; older rows keep none
    assert erased_at is None
