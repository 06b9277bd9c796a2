"""Run the Alembic migrations programmatically (``palermo init``, tests).

Upgrades go to ``head``: the schema is one line of revisions (the domain branches merge in 0006).
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "broker:migrations")
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head", *, role: str | None = None) -> None:
    """Migrate to ``revision``; on PostgreSQL as ``role`` (``SET ROLE``) when given, so that
    every object the migrations make is owned by that role, not by the connecting one."""
    cfg = alembic_config(database_url)
    cfg.attributes["palermo_role"] = role
    command.upgrade(cfg, revision)
