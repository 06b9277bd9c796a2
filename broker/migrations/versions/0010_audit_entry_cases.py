"""Which log entries are about which case, for the audit explorer's case filter.

``audit_entry_cases`` (case id, log index) is append-only like ``audit_entry_parties``: the
sequencer writes a row with each entry whose leaf names a ``case_id``. The entries sequenced
before this revision are indexed here from their leaves.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

from broker.migrations.append_only import append_only

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 2000


def upgrade() -> None:
    op.create_table(
        "audit_entry_cases",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("case_id", "idx", name=op.f("pk_audit_entry_cases")),
    )
    _index_existing_entries()
    append_only("audit_entry_cases")


def _index_existing_entries() -> None:
    bind = op.get_bind()
    after = -1
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT l.idx, e.leaf FROM audit_log l JOIN audit_events e ON e.id = l.event_ref "
                "WHERE l.idx > :after ORDER BY l.idx LIMIT :n"
            ),
            {"after": after, "n": _CHUNK},
        ).all()
        if not rows:
            return
        found = []
        for idx, leaf in rows:
            case_id = orjson.loads(bytes(leaf) if not isinstance(leaf, str) else leaf).get(
                "case_id"
            )
            if isinstance(case_id, str) and case_id:
                found.append({"case_id": case_id, "idx": int(idx)})
        if found:
            bind.execute(
                sa.text("INSERT INTO audit_entry_cases (case_id, idx) VALUES (:case_id, :idx)"),
                found,
            )
        after = int(rows[-1][0])


def downgrade() -> None:
    op.drop_table("audit_entry_cases")
