"""Obligations carried out: approvals of held messages, follow-ups, handling texts.

The policy engine's ``require_approval``, ``follow_up`` and ``handling_text`` obligations had
no consumer outside the MLA transmit guard (issue 14). ``message_approvals`` holds a
submission or forward whose decision requires a supervisor's approval (P16.derogation, LED
art. 38(2)) until a supervisor of the sending participant, not its drafter, approves or
rejects it; ``follow_ups`` is the tracked item a ``follow_up`` obligation opens (P5.late,
UNTOC art. 18(19); P20.national, art. 16(10)), which the clocks remind about when due;
``message_terms.handling_texts`` keeps what ``handling_text`` obligations show every reader
(P12). Rows of messages accepted before stay as they were: nothing was held or tracked then.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 22:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("message_terms") as batch:
        batch.add_column(sa.Column("handling_texts", sa.JSON(), nullable=True))
    op.create_table(
        "message_approvals",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("drafter_account", sa.String(length=36), nullable=False),
        sa.Column("requested_at", _TZ, nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("follow_ups", sa.JSON(), nullable=False),
        sa.Column("follow_up_case_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("decided_at", _TZ, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_approvals_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_message_approvals_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_approvals")),
    )
    with op.batch_alter_table("message_approvals") as batch:
        batch.create_index(
            batch.f("ix_message_approvals_participant_status"), ["participant_id", "status"]
        )
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("what", sa.String(length=500), nullable=False),
        sa.Column("rule_id", sa.String(length=80), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("case_id", sa.String(length=36), nullable=True),
        sa.Column("opened_at", _TZ, nullable=False),
        sa.Column("due_at", _TZ, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("reminded_at", _TZ, nullable=True),
        sa.Column("done_at", _TZ, nullable=True),
        sa.Column("done_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_follow_ups_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_follow_ups_participant_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
    )
    with op.batch_alter_table("follow_ups") as batch:
        batch.create_index(
            batch.f("ix_follow_ups_participant_status"), ["participant_id", "status"]
        )
        batch.create_index(batch.f("ix_follow_ups_status_due"), ["status", "due_at"])


def downgrade() -> None:
    op.drop_table("follow_ups")
    op.drop_table("message_approvals")
    with op.batch_alter_table("message_terms") as batch:
        batch.drop_column("handling_texts")
