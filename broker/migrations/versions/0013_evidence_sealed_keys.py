"""Evidence file keys sealed to the parties (docs/retention.md, "Your own copy").

Each new evidence file's key is sealed (libsodium sealed box) to the requesting and the
requested participant's encryption keys current at upload, beside the node's wrapped copy,
so a party opens its own copy with its own private key. Files uploaded before keep the
node's copy only. Erasure destroys every copy.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 20:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_files") as batch:
        batch.add_column(sa.Column("key_for_requesting", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("key_for_requested", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("requesting_enc_kid", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("requested_enc_kid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence_files") as batch:
        batch.drop_column("requested_enc_kid")
        batch.drop_column("requesting_enc_kid")
        batch.drop_column("key_for_requested")
        batch.drop_column("key_for_requesting")
