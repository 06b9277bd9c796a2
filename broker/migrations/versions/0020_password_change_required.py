"""A temporary password must be changed before anything else (docs/security.md, "Passwords").

``accounts.password_change_required`` is set when the node makes a person's password (an
administrator's reset, or a person account created without one) and cleared when the person
chooses their own. Until then the API answers every call but the password change with 403
``password-change-required`` and the web app sends every page to the change form. Existing
accounts start without the flag.

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-04 21:55:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column(
                "password_change_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("password_change_required")
