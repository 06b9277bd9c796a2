"""Delivery: retry state on the outbox row, and one row per delivery attempt.

The outbox row stays the durable to-do of a message until it is delivered: ``attempts``
counts failed attempts, ``next_attempt_at`` is when the relay may hand it out again (backoff),
``leased_until`` is how long a claim by the relay holds it (a lost task is claimed again after
it), ``dead_lettered_at`` marks a row that ran out of attempts (the relay skips it until an
operator requeues it). ``delivery_attempts`` records every attempt: time, adapter, outcome,
error.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("leased_until", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500)))
        batch_op.add_column(sa.Column("dead_lettered_at", sa.DateTime(timezone=True)))
        batch_op.create_index("ix_outbox_dead_lettered_at", ["dead_lettered_at"], unique=False)

    op.create_table(
        "delivery_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("adapter", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_delivery_attempts_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_attempts")),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_message_id"), ["message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_message_id"))
    op.drop_table("delivery_attempts")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_dead_lettered_at")
        batch_op.drop_column("dead_lettered_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("leased_until")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("attempts")
