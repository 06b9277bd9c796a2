"""Justifications and review reasons out of the audit leaves, into an erasable table.

A consultation's justification or a retention review's reasons may name a person. From this
revision a leaf carries only a salted commitment to such text (``justification_commitment``,
``reason_commitment``); the text and its salt live in ``audit_texts``, erased with the item
they are about (docs/audit.md, docs/retention.md). Leaves written before keep their text:
the log is append-only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 20:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_texts",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("case_id", sa.String(length=36), nullable=True),
        sa.Column("retention_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "field", name=op.f("pk_audit_texts")),
    )
    with op.batch_alter_table("audit_texts") as batch:
        batch.create_index(batch.f("ix_audit_texts_message_id"), ["message_id"])
        batch.create_index(batch.f("ix_audit_texts_case_id"), ["case_id"])
        batch.create_index(batch.f("ix_audit_texts_retention_until"), ["retention_until"])


def downgrade() -> None:
    op.drop_table("audit_texts")
