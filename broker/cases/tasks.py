"""Celery entry points of the case workflows."""

from __future__ import annotations

from broker.cases.config import CaseConfig
from broker.cases.scheduler import Erased, erase_due, run_clocks
from broker.core.context import NodeContext
from broker.core.db import Database, utcnow
from broker.core.logging import get_logger
from broker.core.tasks import runtime, settings, task

log = get_logger(__name__)


@task(name="palermo.cases.tick", max_retries=0)
def tick() -> int:
    """Raise the reminders, escalations, reviews and expiries that are due."""

    async def run(db: Database, node: NodeContext) -> int:
        return await run_clocks(db, node, CaseConfig.from_settings(settings), utcnow())

    raised = runtime.run(run)
    if raised:
        log.info("case clocks", raised=raised)
    return raised


@task(name="palermo.retention.erase", max_retries=0)
def erase() -> dict[str, int]:
    """Crypto-shred what is past its retention (P17): ended cases with their messages and
    evidence, and plain messages."""

    async def run(db: Database, node: NodeContext) -> Erased:
        return await erase_due(db, node, CaseConfig.from_settings(settings), utcnow())

    done = runtime.run(run)
    if done.messages or done.cases or done.sealed:
        log.info(
            "retention erasure",
            messages=len(done.messages),
            cases=len(done.cases),
            sealed=done.sealed,
        )
    return {"messages": len(done.messages), "cases": len(done.cases), "sealed": done.sealed}
