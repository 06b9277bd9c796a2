"""Peer nodes and the directory each publishes (docs/operations.md, "Federation").

``federation_peers`` holds what an operator types once per peer node (its node id, URL, node
key and the jurisdictions it may host participants of) and the state of the peer's signed directory here: the serial and issue time of the
last directory applied, so an older directory cannot replay over a newer one, and the count of
directories that failed to verify (a metric and an alert). The participants and keys a
directory brings live in ``participants`` and ``participant_keys`` as before, registered with
adapter ``peer`` behind that node key.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 22:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "federation_peers",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("node_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("node_key_id", sa.String(length=64), nullable=False),
        sa.Column("jurisdictions", sa.JSON(), nullable=False),
        sa.Column("directory_serial", sa.BigInteger(), nullable=True),
        sa.Column("directory_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("directory_digest", sa.String(length=64), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_federation_peers")),
        sa.UniqueConstraint("node_key_id", name=op.f("uq_federation_peers_node_key_id")),
    )


def downgrade() -> None:
    op.drop_table("federation_peers")
