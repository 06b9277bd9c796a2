"""Operator commands of delivery: dead letters, participants' adapters, file drop imports."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.cli.admin import CommandError, cli_actor, run_in_session
from broker.core.context import NodeContext
from broker.core.db import Database
from broker.core.settings import Settings
from broker.delivery import service
from broker.delivery.federation import ImportReport, import_drop
from broker.worker import node_context


def cmd_deadletter_list(args: argparse.Namespace) -> int:
    async def go(s: AsyncSession, n: NodeContext) -> list[service.DeadLetter]:
        return await service.list_dead_letters(s, recipient=args.recipient, limit=args.limit)

    rows = run_in_session(Settings(), go)
    for d in rows:
        print(
            f"{d.message_id}  {d.recipient_id:24} {d.adapter:9} attempts {d.attempts:3}  "
            f"{d.dead_lettered_at:%Y-%m-%d %H:%M:%S}  {d.last_error or ''}"
        )
    print(f"{len(rows)} dead-lettered message(s)")
    return 0


def cmd_deadletter_requeue(args: argparse.Namespace) -> int:
    if bool(args.message_ids) == args.all:
        raise CommandError("name the messages to requeue, or give --all (with --recipient)")

    async def go(s: AsyncSession, n: NodeContext) -> list[str]:
        return await service.requeue_dead_letters(
            s,
            node_id=n.node_id,
            actor=cli_actor(),
            message_ids=args.message_ids or None,
            recipient=args.recipient,
        )

    ids = run_in_session(Settings(), go)
    for mid in ids:
        print(f"requeued {mid}")
    print(f"{len(ids)} message(s) requeued")
    return 0


def cmd_adapter_set(args: argparse.Namespace) -> int:
    try:
        config: Any = json.loads(args.config) if args.config else {}
    except json.JSONDecodeError as exc:
        raise CommandError(f"--config is not JSON: {exc}") from exc
    p = run_in_session(
        Settings(),
        lambda s, n: service.configure_adapter(
            s,
            node_id=n.node_id,
            participant_id=args.participant,
            adapter=args.adapter,
            config=config,
            actor=cli_actor(),
        ),
    )
    print(f"{p.id} now uses {p.adapter} {json.dumps(p.adapter_config, sort_keys=True)}")
    return 0


def cmd_filedrop_import(args: argparse.Namespace) -> int:
    settings = Settings()
    directory = Path(args.directory)
    if not directory.is_dir():
        raise CommandError(f"{directory} is not a directory")

    async def go() -> ImportReport:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            return await import_drop(
                db,
                node_context(settings),
                directory,
                max_age_seconds=settings.federation_max_age_seconds,
            )
        finally:
            await db.dispose()

    report = asyncio.run(go())
    for name, why in report.rejected:
        print(f"rejected {name}: {why}")
    print(
        f"imported {len(report.accepted)}, already known {len(report.duplicates)}, "
        f"rejected {len(report.rejected)}"
    )
    return 1 if report.rejected else 0


def register(sub: Any) -> None:
    dead = sub.add_parser("deadletter", help="messages whose delivery ran out of attempts")
    dsub = dead.add_subparsers(dest="action", required=True)
    p = dsub.add_parser("list", help="list dead-lettered messages, oldest first")
    p.add_argument("--recipient")
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(handler=cmd_deadletter_list)
    p = dsub.add_parser("requeue", help="give dead letters a fresh set of attempts")
    p.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
    p.add_argument("--all", action="store_true", help="every dead letter (of --recipient)")
    p.add_argument("--recipient")
    p.set_defaults(handler=cmd_deadletter_requeue)

    adapter = sub.add_parser("adapter", help="how messages reach a participant")
    asub = adapter.add_subparsers(dest="action", required=True)
    p = asub.add_parser("set", help="set a participant's adapter and its configuration")
    p.add_argument("participant")
    p.add_argument("adapter", help="inbox, webhook, peer, filedrop, goaml")
    p.add_argument("--config", help='JSON, e.g. \'{"url": "https://agency.example/hook"}\'')
    p.set_defaults(handler=cmd_adapter_set)

    drop = sub.add_parser("filedrop", help="file drops from disconnected peer nodes")
    fsub = drop.add_subparsers(dest="action", required=True)
    p = fsub.add_parser("import", help="import the envelopes a peer node dropped in DIRECTORY")
    p.add_argument("directory")
    p.set_defaults(handler=cmd_filedrop_import)
