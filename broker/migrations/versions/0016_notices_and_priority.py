"""Urgent messages first, and the information a police request is about (docs/workflows.md).

``messages.urgent`` keeps the payload's ``urgent`` flag in clear metadata, so the inbox can
be narrowed to urgent messages, and ``outbox.priority`` (0 urgent, 1 the others) orders the
message's outbox row, so the relay hands urgent messages (an urgent request, an escalation,
a notice of an urgent case) to delivery before any other; the index on (priority, id) is
that order. ``cases.information_access`` is whether an intel.request
asks for information directly or indirectly accessible to the requested side, which picks
its Directive (EU) 2023/977 art. 5(1) deadline. Rows stored before are not urgent.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="1")
        )
        batch.create_index("ix_outbox_priority_id", ["priority", "id"])
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("information_access", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("information_access")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_priority_id")
        batch.drop_column("priority")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("urgent")
