"""Failed logins throttled per login and per client address, for the API and the web app
alike (replacing the web app's own record of failed sign-ins), and the instant before which
an account's tokens are refused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 18:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttles")),
    )
    op.create_index(
        op.f("ix_login_throttles_last_failure_at"), "login_throttles", ["last_failure_at"]
    )
    op.add_column(
        "accounts", sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=True)
    )
    op.drop_table("sign_in_failures")


def downgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("login_digest", sa.String(length=64), nullable=False),
        sa.Column("address_digest", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index(op.f("ix_sign_in_failures_login_digest"), "sign_in_failures", ["login_digest"])
    op.create_index(
        op.f("ix_sign_in_failures_address_digest"), "sign_in_failures", ["address_digest"]
    )
    op.create_index(op.f("ix_sign_in_failures_at"), "sign_in_failures", ["at"])
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("tokens_valid_after")
    op.drop_index(op.f("ix_login_throttles_last_failure_at"), table_name="login_throttles")
    op.drop_table("login_throttles")
