"""Operator commands of delivery: dead letters, participants' adapters, file drop imports."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adapters.destinations import rules_from
from broker.cli.admin import CommandError, cli_actor, run_in_session
from broker.core.context import NodeContext, node_context
from broker.core.db import Database
from broker.core.settings import Settings
from broker.delivery import service
from broker.delivery.federation import ImportReport, import_drop


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
    settings = Settings()
    p = run_in_session(
        settings,
        lambda s, n: service.configure_adapter(
            s,
            node_id=n.node_id,
            participant_id=args.participant,
            adapter=args.adapter,
            config=config,
            rules=rules_from(settings),
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


def cmd_goaml_import(args: argparse.Namespace) -> int:
    """A goAML report, validated and mapped, submitted as an fiu.disclosure."""
    from adapters import goaml
    from broker.cli.client_cmds import _call
    from broker.client import KeyFile, new_payload, sign

    path = Path(args.file)
    try:
        draft = goaml.disclosure_draft(
            path.read_bytes(),
            recipient=args.to,
            legal_basis=args.legal_basis,
            purpose=args.purpose,
            name=path.name,
        )
    except goaml.GoamlInvalid as exc:
        raise CommandError(f"{path}: {exc.detail}") from exc
    if not args.key:
        return _call(args, lambda c: c.send_draft(draft))
    key = KeyFile.load(args.key)
    fields = {k: v for k, v in draft.items() if k not in ("type", "recipient", "body")}
    payload = new_payload(
        sender=key.participant,
        recipient=draft["recipient"],
        type=draft["type"],
        body=draft["body"],
        **fields,
    )
    return _call(args, lambda c: c.submit(sign(key, payload)))


def cmd_goaml_export(args: argparse.Namespace) -> int:
    """A disclosure (its content, read with a justification) written as goAML XML."""
    from adapters import goaml
    from broker.cli.client_cmds import _client
    from broker.client import ProblemError

    with _client(args) as client:
        try:
            content = client.content(args.message_id, args.justification)
        except ProblemError as exc:
            raise CommandError(str(exc)) from exc
    try:
        xml = goaml.disclosure_to_report(content["payload"])
    except goaml.GoamlInvalid as exc:
        raise CommandError(exc.detail) from exc
    Path(args.out).write_bytes(xml)
    print(f"wrote {args.out} ({len(xml)} bytes, valid goAML 5.0.2)")
    return 0


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

    gml = sub.add_parser("goaml", help="goAML 5.0.2 XML reports")
    gsub = gml.add_subparsers(dest="action", required=True)
    for name, handler, text in (
        ("import", cmd_goaml_import, "submit a goAML report as an fiu.disclosure"),
        ("export", cmd_goaml_export, "write a disclosure you hold as goAML XML"),
    ):
        p = gsub.add_parser(name, help=text)
        p.add_argument("--url", default=os.environ.get("PALERMO_URL", "http://127.0.0.1:8000"))
        who = p.add_mutually_exclusive_group()
        who.add_argument("--client-id", help="agency system; secret from PALERMO_CLIENT_SECRET")
        who.add_argument("--user", help="person; password from PALERMO_PASSWORD")
        p.set_defaults(handler=handler)
        if name == "import":
            p.add_argument("file", help="the goAML XML report")
            p.add_argument("--to", required=True, help="recipient participant id")
            p.add_argument("--legal-basis", required=True)
            p.add_argument("--purpose", required=True)
            p.add_argument("--key", help="self-held signing key file; without it the node signs")
        else:
            p.add_argument("message_id")
            p.add_argument("--justification", required=True)
            p.add_argument("--out", required=True, help="where to write the XML")
