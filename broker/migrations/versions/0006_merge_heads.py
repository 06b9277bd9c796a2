"""Merge the four domain branches (audit log, delivery, forwarding, cases) into one line.

From here on the schema has a single head, so ``alembic upgrade head`` and ``alembic check``
(``make db-check``) mean one thing; every new migration revises ``0006`` or a later one.

Revision ID: 0006
Revises: 0002, 0003, 0004, 0005
Create Date: 2026-12-03 13:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004", "0005")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """No schema change: the merge point only."""


def downgrade() -> None:
    """No schema change: the merge point only."""
