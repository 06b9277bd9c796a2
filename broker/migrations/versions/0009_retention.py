"""Retention deadlines and crypto-shredding (P17; LED art. 4(1)(e), 5; docs/retention.md).

Every message, case and consent carries its retention deadline and, once erased, the time of
its erasure; a message's ciphertext and its node-wrapped key become nullable, since erasure
destroys them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("retention_until", _TZ, nullable=True))
        batch.add_column(sa.Column("erased_at", _TZ, nullable=True))
        batch.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=True)
        batch.alter_column("key_for_node", existing_type=sa.LargeBinary(), nullable=True)
        batch.create_index(batch.f("ix_messages_retention_until"), ["retention_until"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("retention_until", _TZ, nullable=True))
        batch.add_column(sa.Column("erased_at", _TZ, nullable=True))
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("retention_until", _TZ, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("retention_until")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("retention_until")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index(batch.f("ix_messages_retention_until"))
        batch.alter_column("key_for_node", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("ciphertext", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("erased_at")
        batch.drop_column("retention_until")
