"""``palermo witness``: run a witness of Palermo audit logs (c2sp.org/tlog-witness).

    palermo witness keygen <name> --key-file FILE     a new witness key (prints its verifier key)
    palermo witness serve --key-file FILE --state FILE --log <node verifier key> [--log ...]
    palermo witness show --state FILE [--origin ORIGIN]   the latest checkpoint cosigned

A log's origin is the name in its verifier key (a Palermo node's id). The key file holds the
secret witness key (``PRIVATE+KEY+...``, mode 0600); the state file holds the latest
checkpoint cosigned per log and must never be rolled back (see broker/oversight/witness.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from audit import CosignatureSigner, Ed25519Verifier, KeyFormatError
from broker.cli.admin import CommandError
from broker.oversight.witness import Witness, create_witness_app, recorded_checkpoints


def _signer(path: str) -> CosignatureSigner:
    try:
        return CosignatureSigner.from_skey(Path(path).read_text(encoding="utf-8").strip())
    except OSError as exc:
        raise CommandError(f"--key-file {path}: {exc.strerror or exc}") from exc
    except KeyFormatError as exc:
        raise CommandError(f"--key-file {path}: not a witness key: {exc}") from exc


def _logs(vkeys: list[str]) -> list[Ed25519Verifier]:
    logs = []
    for vkey in vkeys:
        try:
            logs.append(Ed25519Verifier.from_vkey(vkey))
        except KeyFormatError as exc:
            raise CommandError(f"--log {vkey!r}: {exc}") from exc
    return logs


def cmd_keygen(args: argparse.Namespace) -> int:
    try:
        signer = CosignatureSigner.generate(args.name)
    except KeyFormatError as exc:
        raise CommandError(f"witness name {args.name!r}: {exc}") from exc
    try:
        fd = os.open(args.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise CommandError(f"{args.key_file} exists: refusing to overwrite a witness key") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(signer.skey + "\n")
    print(signer.verifier().vkey)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    witness = Witness(
        signer=_signer(args.key_file), logs=_logs(args.log), state_path=Path(args.state)
    )
    print(f"witness {witness.vkey}", file=sys.stderr, flush=True)
    for name in witness.logs:
        print(f"witnessing log {name}", file=sys.stderr, flush=True)
    uvicorn.run(create_witness_app(witness), host=args.host, port=args.port, log_level="info")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    try:
        recorded = recorded_checkpoints(Path(args.state))
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"--state {args.state}: not a readable witness state: {exc}") from exc
    origins = [args.origin] if args.origin else sorted(recorded)
    for origin in origins:
        if origin not in recorded:
            raise CommandError(f"no checkpoint of log {origin!r} in {args.state}")
        sys.stdout.write(recorded[origin])
    return 0


def register(sub: Any) -> None:
    wit = sub.add_parser("witness", help="a witness of audit logs (c2sp.org/tlog-witness)")
    wsub = wit.add_subparsers(dest="action", required=True)
    p = wsub.add_parser("keygen", help="make a witness key; prints its verifier key")
    p.add_argument("name", help="the witness's name, e.g. witness.garante.it")
    p.add_argument("--key-file", required=True, help="where to write the secret key (0600)")
    p.set_defaults(handler=cmd_keygen)
    p = wsub.add_parser("serve", help="serve POST /add-checkpoint")
    p.add_argument("--key-file", required=True)
    p.add_argument("--state", required=True, help="state file: latest checkpoint per log")
    p.add_argument(
        "--log",
        action="append",
        required=True,
        help="a log's checkpoint verifier key <origin>+<hex id>+<base64> (repeatable)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7380)
    p.set_defaults(handler=cmd_serve)
    p = wsub.add_parser("show", help="print the latest checkpoint cosigned (for palermo-verify)")
    p.add_argument("--state", required=True)
    p.add_argument("--origin", help="one log (default: every log, one after the other)")
    p.set_defaults(handler=cmd_show)
