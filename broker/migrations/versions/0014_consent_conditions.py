"""Consents through the message door carry conditions and a validity, as those through a
case consent thread do (docs/policies.md, "One consent, two doors").

A provider may grant onward use on conditions (they travel with the forward as restrictions,
P9, UNTOC art. 18(26)) and until a date (the consent no longer counts after it). Consents
granted before carry no condition and no end.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.add_column(sa.Column("conditions", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consents") as batch:
        batch.drop_column("valid_until")
        batch.drop_column("conditions")
