"""The schema is one line of revisions, and the drift check sees every domain's tables."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

from broker.core import migrate
from broker.migrations import models

BROKER = Path(models.__file__).parents[1]


def test_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_every_domain_table_is_in_the_checked_metadata() -> None:
    tables = set(models.metadata.tables)
    for name in ("cases", "case_events", "evidence_files", "fiu_match_queries", "consents"):
        assert name in tables
    on_disk = {f"broker.{p.parent.name}.models" for p in BROKER.glob("*/models.py")}
    on_disk.discard("broker.migrations.models")
    assert on_disk == {module.__name__ for module in models.DOMAIN_MODELS}
