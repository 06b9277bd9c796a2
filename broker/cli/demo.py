"""Demo participants and people for the embedded development node.

Passwords and client secrets are generated on first start and kept in the data directory
(``demo-logins.json``, mode 0600): nothing secret is in the repository. The data directory is
marked as a development node, which a production node refuses to start on.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.cli.admin import cli_actor, run_in_session
from broker.client import KeyFile
from broker.core.context import NodeContext
from broker.core.settings import DEV_MARKER, Settings
from broker.participants import service as participants

DEMO_LOGINS_FILE = "demo-logins.json"

PARTICIPANTS = [
    ("it.central-authority", "central_authority", "Italy, Ministry of Justice (central authority)"),
    ("nl.fiu", "fiu", "FIU the Netherlands"),
    ("de.bka", "police", "Germany, Bundeskriminalamt"),
    ("us.central-authority", "central_authority", "United States, Office of International Affairs"),
    ("it.garante", "oversight", "Italy, data protection supervisory authority"),
    ("it.fiu", "fiu", "Italy, UIF (financial intelligence unit)"),
]
PEOPLE = [
    ("it.officer", "it.central-authority", ["officer"], "Giulia Rossi"),
    ("it.supervisor", "it.central-authority", ["supervisor"], "Marco Bianchi"),
    ("nl.analyst", "nl.fiu", ["officer"], "Sanne de Vries"),
    ("nl.supervisor", "nl.fiu", ["supervisor"], "Pieter Jansen"),
    ("de.officer", "de.bka", ["officer"], "Lena Schmidt"),
    ("us.officer", "us.central-authority", ["officer"], "Jordan Lee"),
    ("us.supervisor", "us.central-authority", ["supervisor"], "Avery Morgan"),
    ("it.analyst", "it.fiu", ["officer"], "Chiara Conti"),
    ("it.fiu-supervisor", "it.fiu", ["supervisor"], "Luca Ferrari"),
    ("oversight", "it.garante", ["oversight"], "Oversight reviewer"),
    ("admin", "it.central-authority", ["admin"], "Node operator"),
]
SYSTEMS = [("de-bka-system", "de.bka")]


def seed_demo(settings: Settings) -> dict[str, Any]:
    logins: dict[str, Any] = {"people": [], "systems": []}
    key_dir = settings.data_dir / "keys"

    async def go(s: AsyncSession, n: NodeContext) -> None:
        actor = cli_actor()
        for pid, kind, name in PARTICIPANTS:
            await participants.register_participant(
                s, node=n, participant_id=pid, kind=kind, display_name=name, actor=actor
            )
            for purpose in ("signing", "encryption"):
                await participants.add_key(
                    s,
                    node=n,
                    participant_id=pid,
                    purpose=purpose,
                    public_key=None,
                    generate=True,
                    actor=actor,
                )
        for login, pid, roles, name in PEOPLE:
            password = secrets.token_urlsafe(12)
            await accounts.create_account(
                s,
                node=n,
                participant_id=pid,
                kind=AccountKind.PERSON,
                login=login,
                display_name=name,
                secret=password,
                roles=frozenset(roles),
                actor=actor,
            )
            logins["people"].append(
                {"login": login, "password": password, "participant": pid, "roles": roles}
            )
        for client_id, pid in SYSTEMS:
            account, secret = await accounts.create_account(
                s,
                node=n,
                participant_id=pid,
                kind=AccountKind.SYSTEM,
                login=client_id,
                display_name=f"{pid} case system",
                secret=None,
                roles=frozenset({"system"}),
                actor=actor,
            )
            made = await participants.add_key(
                s,
                node=n,
                participant_id=pid,
                purpose="signing",
                public_key=None,
                generate=True,
                actor=actor,
                custodial=False,
            )
            assert made.private_key is not None
            path = key_dir / f"{pid}.signing.json"
            KeyFile(pid, made.key.kid, made.private_key).save(path)
            logins["systems"].append(
                {
                    "client_id": account.login,
                    "client_secret": secret,
                    "participant": pid,
                    "key_file": str(path),
                }
            )

    run_in_session(settings, go)
    _write_private(settings.data_dir / DEMO_LOGINS_FILE, json.dumps(logins, indent=2))
    (settings.data_dir / DEV_MARKER).write_text(
        "This data directory belongs to a development node with demo users.\n"
        "A node with PALERMO_ENV=production refuses to start on it.\n"
    )
    return logins


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
