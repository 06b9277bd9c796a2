"""Builders shared by the audit log tests: a scenario through the API, the sequencer run the
worker runs, exports and the offline verifier."""

from __future__ import annotations

import asyncio
import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from audit.verify import main as verify_main
from broker.client import KeyFile, new_payload, sign
from broker.core.db import Database
from broker.core.settings import Settings
from broker.oversight.sequencer import log_signer
from broker.oversight.service import commitment
from broker.oversight.tasks import sequence_all
from tests.conftest import Api
from tests.integration.messaging_helpers import LEGAL, envelope, relay

AUDIT_TABLES = (
    "audit_events",
    "audit_log",
    "audit_nodes",
    "audit_entry_parties",
    "audit_entry_cases",
    "audit_checkpoints",
    "audit_cosignatures",
)


def sequence(settings: Settings, *, batch_size: int = 1000) -> int:
    """Run the sequencer once, as the worker's task does; return the leaves sequenced."""

    async def go() -> int:
        db = Database(settings.resolved_database_url, pool_size=1)
        try:
            added, _ = await sequence_all(
                db,
                origin=settings.node_id,
                seed=settings.node_signing_seed,
                batch_size=batch_size,
            )
            return added
        finally:
            await db.dispose()

    return asyncio.run(go())


def verifier_key(settings: Settings) -> str:
    return log_signer(settings.node_id, settings.node_signing_seed).verifier().vkey


def checkpoint_note(api: Api) -> str:
    r = api.get("/v1/audit/checkpoint", as_="oversight")
    assert r.status_code == 200, r.text
    note: str = r.json()["note"]
    return note


def export(api: Api, **params: Any) -> bytes:
    r = api.get("/v1/audit/export", as_="oversight", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    content: bytes = r.content
    return content


@dataclass
class Verdict:
    code: int
    out: str

    @property
    def failed_at(self) -> int | None:
        """The first bad index the verifier reported (None if it reported none)."""
        prefix = "FAIL at index "
        if not self.out.startswith(prefix):
            return None
        return int(self.out[len(prefix) :].split(":", 1)[0])


def verify(tmp_path: Path, bundle: bytes, key: str, earlier: list[str] | None = None) -> Verdict:
    """Run palermo-verify on ``bundle`` holding the ``earlier`` checkpoints."""
    path = tmp_path / f"bundle-{len(list(tmp_path.iterdir()))}.jsonl"
    path.write_bytes(bundle)
    argv = ["--key", key]
    for number, note in enumerate(earlier or []):
        held = tmp_path / f"{path.stem}-checkpoint-{number}.txt"
        held.write_text(note, encoding="utf-8")
        argv += ["--checkpoint", str(held)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = verify_main([*argv, str(path)])
    return Verdict(code, out.getvalue().strip())


@dataclass
class Scenario:
    """What `run_scenario` did, and the checkpoints an auditor kept along the way."""

    message_ids: list[str] = field(default_factory=list)
    refused_id: str = ""
    checkpoints: list[str] = field(default_factory=list)

    def keep(self, api: Api) -> None:
        sequence(api.settings)
        self.checkpoints.append(checkpoint_note(api))


def run_scenario(api: Api, *, messages: int = 3) -> Scenario:
    """Messages submitted, refused, relayed, read and receipted through the API; the sequencer
    runs after each step and an auditor keeps every checkpoint."""
    scenario = Scenario()
    scenario.keep(api)
    key = api.world.keys["de.bka"]
    for _ in range(messages):
        r = api.post("/v1/messages", as_="de.system", json=envelope(key))
        assert r.status_code == 202, r.text
        scenario.message_ids.append(r.json()["id"])
        scenario.keep(api)
    scenario.refused_id = refuse(api, key)
    scenario.keep(api)
    relay(api.settings)
    scenario.keep(api)
    first = scenario.message_ids[0]
    r = api.get(
        f"/v1/messages/{first}/content",
        as_="it.officer",
        params={"justification": "assessing the vessel alert for RG 1234/2026"},
    )
    assert r.status_code == 200, r.text
    scenario.keep(api)
    r = api.post(f"/v1/messages/{first}/receipt", as_="it.officer", content=b"")
    assert r.status_code == 200, r.text
    scenario.keep(api)
    return scenario


def refuse(api: Api, key: KeyFile) -> str:
    """Submit a message the policy refuses (no legal basis); return its id."""
    p = new_payload(
        sender=key.participant,
        recipient="it.central-authority",
        type="intel.message",
        body={"summary": "no legal basis given"},
        data_categories=["vessel-movement"],
        purpose=LEGAL["purpose"],
        handling={"code": "H0"},
        evaluation="B2",
        statement_kind="fact",
    )
    r = api.post("/v1/messages", as_="de.system", json=sign(key, p))
    assert r.status_code == 403, r.text
    return str(p["id"])


def disable_append_only(engine: Engine) -> None:
    """What a superuser can do: switch the append-only triggers off."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        else:
            names = conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND (name LIKE '%_no_update' OR name LIKE '%_no_delete')"
                )
            ).all()
            for (name,) in names:
                conn.execute(text(f"DROP TRIGGER {name}"))


def rebuild_log(engine: Engine, settings: Settings) -> int:
    """What an operator holding the node key can do after rewriting audit_events: throw the
    tree away, sequence the events again and sign fresh checkpoints. Returns the new size."""
    with engine.begin() as conn:
        for table in (
            "audit_cosignatures",
            "audit_checkpoints",
            "audit_entry_parties",
            "audit_entry_cases",
            "audit_nodes",
            "audit_log",
            "audit_unsequenced",
        ):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("INSERT INTO audit_unsequenced (event_ref) SELECT id FROM audit_events"))
        if engine.dialect.name == "postgresql":
            # Cover the tracks: the triggers back on, as they were (the enqueue one too).
            for table in AUDIT_TABLES:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER ALL"))
                names = conn.execute(
                    text(
                        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                        "AND tgrelid = CAST(:t AS regclass)"
                    ),
                    {"t": table},
                ).all()
                for (name,) in names:
                    conn.execute(text(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}"))
    return sequence(settings)


def leaf_at(engine: Engine, index: int) -> tuple[int, bytes]:
    """(audit_events.id, leaf) of the entry at ``index``."""
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT e.id, e.leaf FROM audit_log l JOIN audit_events e ON e.id = l.event_ref "
                "WHERE l.idx = :i"
            ),
            {"i": index},
        ).one()
    return int(row[0]), bytes(row[1])


def kept_text(engine: Engine, leaf: dict[str, Any], field: str) -> str | None:
    """The text a leaf commits to (``<field>_commitment``), read from ``audit_texts`` and
    checked against the commitment; None once erased. The leaf never holds the text."""
    assert field not in leaf, f"the leaf holds its {field} in clear"
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT text, salt FROM audit_texts WHERE event_id = :e AND field = :f"),
            {"e": leaf["event_id"], "f": field},
        ).first()
    if row is None:
        return None
    value, salt = str(row[0]), bytes(row[1])
    assert commitment(salt, value) == leaf[f"{field}_commitment"]
    return value
