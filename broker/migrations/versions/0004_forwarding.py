"""Onward use: the terms of each accepted message that onward use needs, and consents.

``message_terms`` holds a row only where a message's terms differ from what its ``messages``
row implies (see ``broker.consents.models``). ``consents`` records each request for onward use
of received material, and the provider's answer; both are signed ``fiu.consent`` messages.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_terms",
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("root_message_id", sa.String(length=36), nullable=False),
        sa.Column("forwarded_from", sa.String(length=36), nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("original_purpose", sa.String(length=200), nullable=True),
        sa.Column("permitted_recipients", sa.JSON(), nullable=False),
        sa.Column("permitted_purposes", sa.JSON(), nullable=False),
        sa.Column("handling_code", sa.String(length=2), nullable=True),
        sa.Column("handling_restriction", sa.Text(), nullable=True),
        sa.Column("restrictions", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_terms_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["forwarded_from"],
            ["messages.id"],
            name=op.f("fk_message_terms_forwarded_from_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["participants.id"],
            name=op.f("fk_message_terms_provider_id_participants"),
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_message_terms")),
    )
    with op.batch_alter_table("message_terms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_message_terms_root_message_id"), ["root_message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_message_terms_forwarded_from"), ["forwarded_from"], unique=False
        )

    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("root_message_id", sa.String(length=36), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("grounds", sa.JSON(), nullable=False),
        sa.Column("request_message_id", sa.String(length=36), nullable=False),
        sa.Column("answer_message_id", sa.String(length=36), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_consents_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["participants.id"],
            name=op.f("fk_consents_provider_id_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["participants.id"],
            name=op.f("fk_consents_requester_id_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["request_message_id"],
            ["messages.id"],
            name=op.f("fk_consents_request_message_id_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["answer_message_id"],
            ["messages.id"],
            name=op.f("fk_consents_answer_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consents_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consents_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consents_requester_id"), ["requester_id"], unique=False
        )
        batch_op.create_index(
            "ix_consents_root_status", ["root_message_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_root_status")
        batch_op.drop_index(batch_op.f("ix_consents_requester_id"))
        batch_op.drop_index(batch_op.f("ix_consents_provider_id"))
        batch_op.drop_index(batch_op.f("ix_consents_message_id"))
    op.drop_table("consents")
    with op.batch_alter_table("message_terms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_terms_forwarded_from"))
        batch_op.drop_index(batch_op.f("ix_message_terms_root_message_id"))
    op.drop_table("message_terms")
