"""Collecting witness cosignatures of the node's checkpoints (c2sp.org/tlog-witness, client).

For each configured witness (its URL and its cosignature verifier key), `collect_cosignatures`
sends the latest checkpoint to ``POST <url>/add-checkpoint`` with a consistency proof from the
size that witness last cosigned. A witness that recorded another size answers 409 with its
size; the node then retries once from that size.

What it guarantees:

- A cosignature is stored only if it verifies, under the key configured for the witness
  that returned it, over the exact checkpoint stored (`audit.open_cosigned_checkpoint`).
- A witness that has seen a larger tree than the node's latest, or a different tree of the
  same size, is reported as an error: that is what a rollback or a fork looks like.
- No database transaction stays open during a network call (on SQLite a transaction holds
  the write lock).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from audit import (
    CheckpointError,
    CosignatureError,
    CosignatureVerifier,
    KeyFormatError,
    NoteError,
    Verifier,
    consistency_proof,
    open_cosigned_checkpoint,
)
from broker.core.db import Database, utcnow
from broker.core.logging import get_logger
from broker.core.settings import ConfigurationError, Settings
from broker.oversight.models import AuditCheckpoint, AuditCosignature
from broker.oversight.nodes import with_stored_nodes
from broker.oversight.service import latest_checkpoint

log = get_logger(__name__)

SIZE_CONTENT_TYPE = "text/x.tlog.size"


@dataclass(frozen=True, slots=True)
class Witness:
    url: str
    verifier: CosignatureVerifier

    @property
    def add_checkpoint_url(self) -> str:
        return self.url.rstrip("/") + "/add-checkpoint"


def configured_witnesses(settings: Settings) -> list[Witness]:
    """The witnesses of PALERMO_WITNESS_URLS and PALERMO_WITNESS_KEYS.

    Raises:
        ConfigurationError: the lists differ in length, or a key is not a cosignature key.
    """
    witnesses = []
    for url, vkey in settings.witnesses:
        try:
            witnesses.append(Witness(url, CosignatureVerifier.from_vkey(vkey)))
        except KeyFormatError as exc:
            raise ConfigurationError(f"PALERMO_WITNESS_KEYS: {vkey!r}: {exc}") from exc
    return witnesses


@dataclass(frozen=True, slots=True)
class Request:
    """One add-checkpoint request, prepared from the database."""

    size: int
    note: str
    old: int
    body: bytes


async def _last_cosigned_size(session: AsyncSession, witness: Witness) -> int:
    size = await session.scalar(
        select(func.max(AuditCosignature.checkpoint_size)).where(
            AuditCosignature.witness_name == witness.verifier.name,
            AuditCosignature.witness_key_id == witness.verifier.key_id,
        )
    )
    return 0 if size is None else int(size)


async def prepare_request(
    session: AsyncSession, *, witness: Witness, checkpoint: AuditCheckpoint, old: int | None
) -> Request | None:
    """The request for ``checkpoint`` from ``old`` (default: the size this witness last
    cosigned); None if the witness already cosigned it."""
    if old is None:
        already = await session.scalar(
            select(AuditCosignature.id).where(
                AuditCosignature.checkpoint_size == checkpoint.size,
                AuditCosignature.witness_name == witness.verifier.name,
                AuditCosignature.witness_key_id == witness.verifier.key_id,
            )
        )
        if already is not None:
            return None
        old = await _last_cosigned_size(session, witness)
    size = int(checkpoint.size)
    proof: list[bytes] = []
    if 0 < old < size:
        proof = await with_stored_nodes(
            session, lambda reader: consistency_proof(reader, old, size)
        )
    lines = [f"old {old}\n"] + [base64.b64encode(h).decode() + "\n" for h in proof]
    body = ("".join(lines) + "\n" + checkpoint.note).encode("utf-8")
    return Request(size=size, note=checkpoint.note, old=old, body=body)


async def store_cosignature(
    session: AsyncSession,
    *,
    witness: Witness,
    request: Request,
    response_text: str,
    log_verifier: Verifier,
    now: dt.datetime | None = None,
) -> bool:
    """Keep the witness's cosignature if it verifies over the stored checkpoint; return
    whether one was stored. The caller commits."""
    try:
        cosigned = open_cosigned_checkpoint(
            request.note + response_text, log_verifier, [witness.verifier], quorum=1
        )
    except (NoteError, CheckpointError, CosignatureError) as exc:
        log.warning("witness returned no valid cosignature", witness=witness.url, error=str(exc))
        return False
    if cosigned.checkpoint.size != request.size:
        return False
    prefix = f"\u2014 {witness.verifier.name} "
    ours = [
        line + "\n"
        for line in response_text.splitlines()
        if line.startswith(prefix)
        and base64.b64decode(line[len(prefix) :])[:4] == witness.verifier.key_id.to_bytes(4, "big")
    ]
    cosignature = cosigned.cosignatures[0]
    session.add(
        AuditCosignature(
            checkpoint_size=request.size,
            witness_name=cosignature.name,
            witness_key_id=cosignature.key_id,
            timestamp=cosignature.timestamp,
            line=ours[0],
            witness_url=witness.url,
            received_at=now or utcnow(),
        )
    )
    await session.flush()
    return True


def _conflict_size(response: httpx.Response) -> int | None:
    if not response.headers.get("content-type", "").startswith(SIZE_CONTENT_TYPE):
        return None
    text = response.text.strip()
    return int(text) if text.isdigit() else None


async def _attempt(
    db: Database,
    *,
    witness: Witness,
    old: int | None,
    log_verifier: Verifier,
    client: httpx.AsyncClient,
) -> tuple[bool, int | None]:
    """One add-checkpoint round trip: (stored a cosignature, size to retry from or None)."""
    async with db.session() as session:
        checkpoint = await latest_checkpoint(session)
        request = (
            None
            if checkpoint is None
            else await prepare_request(session, witness=witness, checkpoint=checkpoint, old=old)
        )
        await session.rollback()
    if request is None:
        return False, None
    try:
        response = await client.post(
            witness.add_checkpoint_url,
            content=request.body,
            headers={"content-type": "text/plain; charset=utf-8"},
        )
    except httpx.HTTPError as exc:
        log.warning("witness unreachable", witness=witness.url, error=str(exc))
        return False, None
    if response.status_code == 200:
        async with db.session() as session:
            try:
                stored = await store_cosignature(
                    session,
                    witness=witness,
                    request=request,
                    response_text=response.text,
                    log_verifier=log_verifier,
                )
                await session.commit()
            except IntegrityError:  # a concurrent collector stored it first
                stored = False
        return stored, None
    seen = _conflict_size(response) if response.status_code == 409 else None
    if seen is None:
        log.warning(
            "witness refused the checkpoint",
            witness=witness.url,
            status=response.status_code,
            detail=response.text[:300],
        )
    elif seen > request.size or seen == request.old:
        log.error(
            "witness holds a different view of the log: rollback or fork",
            witness=witness.url,
            witness_size=seen,
            node_size=request.size,
        )
        seen = None
    return False, seen


async def _cosign_one(
    db: Database, *, witness: Witness, log_verifier: Verifier, client: httpx.AsyncClient
) -> bool:
    """Ask one witness; after a 409 naming a smaller size, retry once from that size."""
    stored, retry_from = await _attempt(
        db, witness=witness, old=None, log_verifier=log_verifier, client=client
    )
    if retry_from is not None:
        stored, _ = await _attempt(
            db, witness=witness, old=retry_from, log_verifier=log_verifier, client=client
        )
    return stored


async def collect_cosignatures(
    db: Database,
    *,
    witnesses: list[Witness],
    log_verifier: Verifier,
    client: httpx.AsyncClient,
) -> int:
    """Ask every witness to cosign the latest checkpoint; return how many new cosignatures
    were stored."""
    stored = 0
    for witness in witnesses:
        if await _cosign_one(db, witness=witness, log_verifier=log_verifier, client=client):
            stored += 1
    return stored
