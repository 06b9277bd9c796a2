"""The ``palermo`` command: what an operator does without the API, and a small client.

Sub-commands: init, serve, worker, beat, dev, participant, key, user, client, audit, send,
inbox, read, receipt, policy, witness, retention, federation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from broker.cli import (
    admin,
    client_cmds,
    delivery,
    federation,
    policy,
    processes,
    retention,
    witness,
)
from broker.core.settings import ConfigurationError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="palermo",
        description="Palermo: secure broker for inter-agency exchange and MLA.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    processes.register(sub)
    admin.register(sub)
    client_cmds.register(sub)
    policy.register(sub)
    delivery.register(sub)
    federation.register(sub)
    witness.register(sub)
    retention.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:2] == ["audit", "verify"]:
        # argparse's REMAINDER refuses a first word that looks like an option (--key ...),
        # so the verifier's own parser gets the words untouched.
        return admin.cmd_audit_verify(argparse.Namespace(rest=words[2:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (admin.CommandError, ConfigurationError) as exc:
        print(f"palermo: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
