"""Operator commands of federation: peer nodes and their directories."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.destinations import rules_from
from broker.cli.admin import CommandError, cli_actor, run_in_session
from broker.core.context import NodeContext, node_context
from broker.core.db import Database
from broker.core.errors import NotFound
from broker.core.settings import Settings
from broker.federation import service
from broker.federation.models import FederationPeer


def cmd_peer_set(args: argparse.Namespace) -> int:
    async def go(s: AsyncSession, n: NodeContext) -> FederationPeer:
        return await service.configure_peer(
            s,
            node=n,
            node_id=args.node,
            url=args.url,
            node_key=args.node_key,
            jurisdictions=args.jurisdiction,
            rules=rules_from(settings),
            actor=cli_actor(),
        )

    settings = Settings()
    peer = run_in_session(settings, go)
    print(f"peer {peer.node_id} at {peer.url}, node key {peer.node_key_id}")
    return 0


def cmd_sync_directory(args: argparse.Namespace) -> int:
    settings = Settings()

    async def go() -> list[service.SyncResult]:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            return await service.sync_all(
                db,
                node=node_context(settings),
                config=service.directory_config(settings),
                only=args.peer,
            )
        finally:
            await db.dispose()

    try:
        results = asyncio.run(go())
    except NotFound as exc:
        raise CommandError(exc.detail) from exc
    for r in results:
        changed = ""
        if r.changes is not None and r.changes.any():
            changed = " " + ", ".join(f"{k} {len(v)}" for k, v in r.changes.to_dict().items() if v)
        print(f"{r.peer}: {r.outcome}{changed}{'  ' + r.error if r.error else ''}")
    return 1 if any(r.outcome in ("refused", "unreachable") for r in results) else 0


def register(sub: Any) -> None:
    fed = sub.add_parser("federation", help="peer nodes and their signed directories")
    fsub = fed.add_subparsers(dest="action", required=True)
    p = fsub.add_parser("peer-set", help="register a peer node (its URL and node key, once)")
    p.add_argument("node", help="the peer's node id (its GET /v1/node node_id)")
    p.add_argument("--url", required=True, help="the peer's public URL")
    p.add_argument("--node-key", required=True, help="its signing_public_key, base64")
    p.add_argument(
        "--jurisdiction",
        action="append",
        required=True,
        metavar="CC",
        help="a jurisdiction the peer hosts participants of (repeatable), e.g. DE",
    )
    p.set_defaults(handler=cmd_peer_set)
    p = fsub.add_parser("sync-directory", help="fetch, verify and apply peers' directories now")
    p.add_argument("--peer", metavar="NODE", help="only this peer node")
    p.set_defaults(handler=cmd_sync_directory)
