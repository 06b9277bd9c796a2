"""Client commands: send, inbox, read, receipt. They talk to a node over its HTTP API.

Credentials: ``--client-id`` with ``PALERMO_CLIENT_SECRET`` (agency systems), or ``--user``
with ``PALERMO_PASSWORD`` (people); never on the command line, where other users could see
them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from broker.cli.admin import CommandError
from broker.client import (
    EncryptionKeyFile,
    ExportError,
    KeyFile,
    PalermoClient,
    ProblemError,
    new_payload,
    open_exported,
)


def _client(args: argparse.Namespace) -> PalermoClient:
    client = PalermoClient(args.url)
    try:
        if args.client_id:
            secret = os.environ.get("PALERMO_CLIENT_SECRET")
            if not secret:
                raise CommandError("set PALERMO_CLIENT_SECRET for --client-id")
            client.login_client(args.client_id, secret)
        elif args.user:
            password = os.environ.get("PALERMO_PASSWORD")
            if not password:
                raise CommandError("set PALERMO_PASSWORD for --user")
            client.login(args.user, password)
        else:
            raise CommandError("give --client-id or --user")
    except ProblemError as exc:
        client.close()
        raise CommandError(str(exc)) from exc
    return client


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _call(args: argparse.Namespace, fn: Any) -> int:
    with _client(args) as client:
        try:
            _print(fn(client))
        except ProblemError as exc:
            _print(exc.problem)
            return 1
    return 0


def _body(value: str) -> dict[str, Any]:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise CommandError("--body must be a JSON object")
    return body


def cmd_send(args: argparse.Namespace) -> int:
    extra: dict[str, Any] = {}
    if args.data_category:
        extra["data_categories"] = args.data_category
    if args.handling:
        extra["handling"] = {"code": args.handling}
    if args.evaluation:
        extra["evaluation"] = args.evaluation
    if args.statement_kind:
        extra["statement_kind"] = args.statement_kind
    if args.transfer_basis:
        extra["transfer_basis"] = args.transfer_basis
    if args.key:
        key = KeyFile.load(args.key)
        payload = new_payload(
            sender=key.participant,
            recipient=args.to,
            type=args.type,
            body=_body(args.body),
            legal_basis=args.legal_basis,
            purpose=args.purpose,
            **extra,
        )
        return _call(args, lambda c: c.send(key, payload))
    draft: dict[str, Any] = {"type": args.type, "recipient": args.to, "body": _body(args.body)}
    draft.update(
        {k: v for k, v in (("legal_basis", args.legal_basis), ("purpose", args.purpose)) if v}
    )
    draft.update(extra)
    return _call(args, lambda c: c.send_draft(draft))


def cmd_inbox(args: argparse.Namespace) -> int:
    return _call(args, lambda c: c.inbox(cursor=args.cursor, limit=args.limit))


def cmd_read(args: argparse.Namespace) -> int:
    return _call(args, lambda c: c.content(args.message_id, args.justification))


def cmd_export(args: argparse.Namespace) -> int:
    """Write every message of your participant that opens with your own encryption key, as
    JSON lines (id, type, parties, time, your role, the countersigned envelope); the node's
    master key plays no part. Messages sealed to another key (or none) are listed on stderr
    and make the exit status 1."""
    try:
        key = EncryptionKeyFile.load(args.encryption_key)
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"--encryption-key: {exc}") from exc
    written = failed = 0
    out = open(args.out, "w") if args.out else sys.stdout  # noqa: SIM115 - closed below
    try:
        with _client(args) as client:
            try:
                for item in client.export(args.justification):
                    try:
                        envelope = open_exported(key, item)
                    except ExportError as exc:
                        print(f"not opened: {exc}", file=sys.stderr)
                        failed += 1
                        continue
                    keep = ("id", "type", "sender", "recipient", "accepted_at", "role")
                    line = {k: item[k] for k in keep} | {"envelope": envelope}
                    out.write(json.dumps(line, sort_keys=True) + "\n")
                    written += 1
            except ProblemError as exc:
                _print(exc.problem)
                return 1
    finally:
        if args.out:
            out.close()
    print(f"exported {written} messages, {failed} not opened with {key.kid}", file=sys.stderr)
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    return _call(args, lambda c: c.message(args.message_id))


def cmd_receipt(args: argparse.Namespace) -> int:
    return _call(args, lambda c: c.receipt(args.message_id))


def register(sub: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=os.environ.get("PALERMO_URL", "http://127.0.0.1:8000"))
        who = p.add_mutually_exclusive_group()
        who.add_argument("--client-id", help="agency system; secret from PALERMO_CLIENT_SECRET")
        who.add_argument("--user", help="person; password from PALERMO_PASSWORD")

    p = sub.add_parser("send", help="sign (with --key) or draft a message and submit it")
    common(p)
    p.add_argument("--key", help="self-held signing key file; without it the node signs")
    p.add_argument("--to", required=True, help="recipient participant id")
    p.add_argument("--type", default="intel.message")
    p.add_argument("--legal-basis")
    p.add_argument("--purpose")
    p.add_argument("--data-category", action="append")
    p.add_argument("--handling", choices=["H0", "H1", "H2", "H3"])
    p.add_argument("--evaluation", help="source and information grading, e.g. B2")
    p.add_argument("--statement-kind", choices=["fact", "assessment"])
    p.add_argument("--transfer-basis", choices=["adequacy", "appropriate_safeguards", "derogation"])
    p.add_argument("--body", default="{}", help="JSON object, or @file")
    p.set_defaults(handler=cmd_send)
    p = sub.add_parser("inbox", help="list messages delivered to you")
    common(p)
    p.add_argument("--cursor")
    p.add_argument("--limit", type=int)
    p.set_defaults(handler=cmd_inbox)
    p = sub.add_parser("read", help="read a message's content (logged, with justification)")
    common(p)
    p.add_argument("message_id")
    p.add_argument("--justification", required=True)
    p.set_defaults(handler=cmd_read)
    p = sub.add_parser("export", help="your messages, opened with your own encryption key (logged)")
    common(p)
    p.add_argument("--encryption-key", required=True, help="self-held encryption key file")
    p.add_argument("--justification", required=True)
    p.add_argument("--out", help="JSON lines file (default: standard output)")
    p.set_defaults(handler=cmd_export)
    p = sub.add_parser("status", help="a message's status")
    common(p)
    p.add_argument("message_id")
    p.set_defaults(handler=cmd_status)
    p = sub.add_parser("receipt", help="receipt a message (the node signs with your custodial key)")
    common(p)
    p.add_argument("message_id")
    p.set_defaults(handler=cmd_receipt)
