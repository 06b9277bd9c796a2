"""Indexes for the message lists of the web pages (bench/web.py, issue 11).

- ``ix_messages_sender_id`` (sender_id, id): the sent list is newest first by id (UUIDv7),
  so the list walks this index backwards and stops at the page's limit, instead of sorting
  every message the participant ever sent (SQLite's "USE TEMP B-TREE FOR ORDER BY").
- ``ix_messages_sender_type`` and ``ix_messages_recipient_type``: the filter form's message
  types (``broker.messages.lists.message_types``) are read from the indexes alone. The second
  replaces ``ix_messages_recipient_id``, of which it is a prefix-compatible extension, so the
  inbox's queries by recipient keep an index and ingress writes one index more, not two.
- ``ix_messages_recipient_waiting`` (recipient_id, status, delivered_at, id): the home page's
  messages waiting for an acknowledgement, longest waiting first, read in index order up to
  the section's limit instead of sorting the whole inbox.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_sender_id", "messages", ["sender_id", "id"])
    op.create_index("ix_messages_sender_type", "messages", ["sender_id", "type"])
    op.create_index("ix_messages_recipient_type", "messages", ["recipient_id", "type"])
    op.create_index(
        "ix_messages_recipient_waiting",
        "messages",
        ["recipient_id", "status", "delivered_at", "id"],
    )
    op.drop_index("ix_messages_recipient_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_recipient_id", "messages", ["recipient_id"])
    op.drop_index("ix_messages_recipient_waiting", table_name="messages")
    op.drop_index("ix_messages_recipient_type", table_name="messages")
    op.drop_index("ix_messages_sender_type", table_name="messages")
    op.drop_index("ix_messages_sender_id", table_name="messages")
