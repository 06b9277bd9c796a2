"""Cases: workflow instances, their append-only event history, evidence files, and the
anonymous matching queries and answers of FIUs.

``case_events``, ``fiu_match_queries`` and ``fiu_match_answers`` record history and are
append-only in the database itself, as ``audit_events`` is (0001): triggers refuse UPDATE,
DELETE and TRUNCATE. ``cases`` is the projection of ``case_events`` and is rewritten with
each event; ``evidence_files`` loses its wrapped key when retention ends (crypto-shredding).

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from broker.migrations.append_only import append_only

revision: str = "0005"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_TABLES = ("case_events", "fiu_match_queries", "fiu_match_answers")
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workflow", sa.String(length=32), nullable=False),
        sa.Column("case_type", sa.String(length=16), nullable=False),
        sa.Column("parent_id", sa.String(length=36), nullable=True),
        sa.Column("requesting_id", sa.String(length=64), nullable=False),
        sa.Column("requested_id", sa.String(length=64), nullable=False),
        sa.Column("opened_by", sa.String(length=36), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_message_id", sa.String(length=36), nullable=True),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("projection", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.String(length=200), nullable=True),
        sa.Column("purpose", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=35), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("transfer_basis", sa.String(length=32), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("extraordinary_costs", sa.Boolean(), nullable=False),
        sa.Column("initiated_by", sa.String(length=16), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_reason", sa.String(length=500), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("assistance_types", sa.JSON(), nullable=False),
        sa.Column("data_subject_categories", sa.JSON(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("request_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("request_key", sa.LargeBinary(), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("origin", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["parent_id"], ["cases.id"], name=op.f("fk_cases_parent_id_cases")),
        sa.ForeignKeyConstraint(
            ["requesting_id"],
            ["participants.id"],
            name=op.f("fk_cases_requesting_id_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_id"],
            ["participants.id"],
            name=op.f("fk_cases_requested_id_participants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for column in (
            "workflow",
            "parent_id",
            "requesting_id",
            "requested_id",
            "state",
            "next_due_at",
            "next_check_at",
        ):
            batch_op.create_index(batch_op.f(f"ix_cases_{column}"), [column], unique=False)

    op.create_table(
        "case_events",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=False),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("actor_participant", sa.String(length=64), nullable=True),
        sa.Column("actor_account", sa.String(length=36), nullable=True),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("envelope_sha256", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("policy_pack", sa.String(length=80), nullable=True),
        sa.Column("policy_rules", sa.JSON(), nullable=False),
        sa.Column("node_signature", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_case_events_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_case_events_event_id")),
        sa.UniqueConstraint("message_id", name=op.f("uq_case_events_message_id")),
        sa.UniqueConstraint("case_id", "seq", name="uq_case_events_case_id_seq"),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_case_id"), ["case_id"], unique=False)

    op.create_table(
        "evidence_files",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("side", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by_participant", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by_account", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("key_for_node", sa.LargeBinary(), nullable=True),
        sa.Column("storage", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_evidence_files_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_files")),
    )
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_files_case_id"), ["case_id"], unique=False)

    op.create_table(
        "fiu_match_queries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("requester_id", sa.String(length=64), nullable=False),
        sa.Column("counterpart_id", sa.String(length=64), nullable=False),
        sa.Column("exchange_id", sa.String(length=64), nullable=False),
        sa.Column("filter_count", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("legal_basis", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["participants.id"],
            name=op.f("fk_fiu_match_queries_requester_id_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["counterpart_id"],
            ["participants.id"],
            name=op.f("fk_fiu_match_queries_counterpart_id_participants"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_fiu_match_queries_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fiu_match_queries")),
        sa.UniqueConstraint("message_id", name=op.f("uq_fiu_match_queries_message_id")),
    )
    with op.batch_alter_table("fiu_match_queries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fiu_match_queries_requester_id"), ["requester_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_fiu_match_queries_counterpart_id"), ["counterpart_id"], unique=False
        )

    op.create_table(
        "fiu_match_answers",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("query_id", sa.String(length=36), nullable=False),
        sa.Column("result", sa.String(length=8), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("answered_by", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("draft_case_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["query_id"],
            ["fiu_match_queries.id"],
            name=op.f("fk_fiu_match_answers_query_id_fiu_match_queries"),
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_fiu_match_answers_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["draft_case_id"], ["cases.id"], name=op.f("fk_fiu_match_answers_draft_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fiu_match_answers")),
        sa.UniqueConstraint("query_id", name=op.f("uq_fiu_match_answers_query_id")),
        sa.UniqueConstraint("message_id", name=op.f("uq_fiu_match_answers_message_id")),
    )

    for table in APPEND_ONLY_TABLES:
        append_only(table)


def downgrade() -> None:
    op.drop_table("fiu_match_answers")
    op.drop_table("fiu_match_queries")
    op.drop_table("evidence_files")
    op.drop_table("case_events")
    op.drop_table("cases")
