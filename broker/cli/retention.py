"""Operator commands of retention (P17; docs/retention.md): erase what is due now."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from broker.cases.config import CaseConfig
from broker.cases.scheduler import Erased, erase_due
from broker.cli.admin import CommandError
from broker.core.context import node_context
from broker.core.db import Database, utcnow
from broker.core.errors import PalermoError
from broker.core.settings import ConfigurationError, Settings


def cmd_retention_erase(args: argparse.Namespace) -> int:
    settings = Settings()

    now = utcnow()

    async def go() -> Erased:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            return await erase_due(
                db, node_context(settings), CaseConfig.from_settings(settings), now
            )
        finally:
            await db.dispose()

    try:
        done = asyncio.run(go())
    except (PalermoError, ConfigurationError) as exc:
        raise CommandError(str(exc)) from exc
    for case_id in done.cases:
        print(f"erased case {case_id}")
    for message_id in done.messages:
        print(f"erased message {message_id}")
    print(
        f"{len(done.cases)} case(s), {len(done.messages)} message(s) erased "
        f"at {now:%Y-%m-%dT%H:%M:%SZ}"
    )
    if done.sealed:
        print(f"{done.sealed} key copy(ies) sealed to parties that had none")
    return 0


def register(sub: Any) -> None:
    ret = sub.add_parser("retention", help="retention of content (P17)")
    rsub = ret.add_subparsers(dest="action", required=True)
    p = rsub.add_parser(
        "erase",
        help="crypto-shred every case and message whose retention has ended",
    )
    p.set_defaults(handler=cmd_retention_erase)
