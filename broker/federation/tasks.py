"""Celery entry point of federation: beat syncs every peer's directory every
``PALERMO_FEDERATION_DIRECTORY_INTERVAL_SECONDS`` (default 3 minutes), so a key rotated or
revoked on a peer takes effect here within minutes. A peer's refused or unreachable directory
is logged and counted (broker/federation/service.py); it does not fail the run for the others.
"""

from __future__ import annotations

from broker.core.context import NodeContext
from broker.core.db import Database
from broker.core.logging import get_logger
from broker.core.tasks import runtime, settings, task
from broker.federation.service import SyncResult, directory_config, sync_all

log = get_logger(__name__)


@task(name="palermo.federation.sync_directories", max_retries=0)
def sync_directories() -> int:
    """Sync each configured peer's directory once; the number applied with changes."""

    async def run(db: Database, node: NodeContext) -> list[SyncResult]:
        return await sync_all(db, node=node, config=directory_config(settings))

    results = runtime.run(run)
    changed = [r for r in results if r.outcome == "applied" and r.changes and r.changes.any()]
    if changed:
        log.info("federation: peer directories applied", peers=[r.peer for r in changed])
    return len(changed)
