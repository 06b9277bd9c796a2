"""The sequencer: the single writer that turns queued audit leaves into the Merkle log.

Every audit event is queued in ``audit_unsequenced`` by a database trigger, in the event's own
transaction. `sequence_batch` takes the oldest queued events (event id order), gives them the
next indices of the log, stores the new perfect-subtree hashes (`audit.new_subtree_nodes`'s
storage model, through `audit.Frontier`), records which participants may see each entry, and
signs a C2SP checkpoint of the new tree with the node key.

Invariants:

- One sequencer at a time. PostgreSQL: a transaction-scoped advisory lock (`LOCK_KEY`) taken
  first; SQLite: the database write lock, which every transaction takes at BEGIN IMMEDIATE.
  Any number of workers may run the task; the others wait or skip.
- A batch is atomic: entries, subtree rows, parties, queue deletions and the checkpoint of the
  new size are written in the caller's transaction, all or none. So the latest checkpoint
  always covers the whole log, and indices are dense: 0 .. n-1.
- The sequencer never signs a tree that does not extend the last one it signed: before
  appending, it recomputes the root of the stored right edge and refuses (`SequencerError`)
  if it differs from the latest checkpoint's root.
- A committed event is sequenced exactly once; an event whose transaction is still open when a
  batch runs is simply taken by a later batch (indices follow sequencing order, not ids).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from audit import (
    EMPTY_ROOT,
    Checkpoint,
    Ed25519Signer,
    Frontier,
    Signer,
    leaf_hash,
    sign_checkpoint,
)
from broker.core.db import utcnow
from broker.oversight.models import (
    AuditCheckpoint,
    AuditEntryCase,
    AuditEntryParty,
    AuditEvent,
    AuditLogEntry,
    AuditNode,
    AuditUnsequenced,
)
from broker.oversight.nodes import with_stored_nodes
from broker.oversight.service import AuditKind, latest_checkpoint

LOCK_KEY = 0x70616C65726D6F
"""PostgreSQL advisory lock key of the sequencer (ASCII "palermo")."""

MESSAGE_LIFECYCLE = frozenset(
    {AuditKind.MESSAGE_ACCEPTED, AuditKind.MESSAGE_DELIVERED, AuditKind.MESSAGE_RECEIPTED}
)
"""Kinds both parties of a message may see, whichever of them the event concerns."""

_NAMING_PARTIES = (AuditKind.MESSAGE_ACCEPTED.value, AuditKind.MESSAGE_APPROVED.value)
"""The leaves that name a message's sender and recipient: its acceptance, or, for a message
held for approval (whose acceptance is a ``message:held`` leaf, the sender's only), the
approval that released it."""

_LOOKUP_CHUNK = 500


class SequencerError(RuntimeError):
    """The stored log is not what the node last signed; the sequencer refuses to go on."""


@dataclass(frozen=True, slots=True)
class Batch:
    """The outcome of one sequencer run."""

    size: int
    """Tree size after the run (the size of the latest checkpoint)."""
    added: int
    """Leaves sequenced by this run (0: nothing was queued)."""
    checkpoint: str
    """The latest signed checkpoint note."""


def log_signer(origin: str, seed: bytes) -> Ed25519Signer:
    """The node's checkpoint key: Ed25519 with the node signing seed, named by the origin.

    Raises:
        audit.KeyFormatError: the origin is not a valid key name (it contains a space or '+').
    """
    return Ed25519Signer(origin, seed)


def entry_parties(
    kind: str, participant_id: str | None, message_parties: Iterable[str] = ()
) -> set[str]:
    """The participants that may see an entry through the API (oversight sees every entry).

    - the entry's own participant (the one that acted, or that the event concerns);
    - for the lifecycle of a message (accepted, delivered, receipted): its sender and its
      recipient, as the message:accepted leaf names them.

    Nobody else: a refused message stays the sender's (it was never disclosed to the
    recipient), and a consultation with its justification stays the consulting participant's.
    """
    parties = {participant_id} if participant_id else set()
    if kind in MESSAGE_LIFECYCLE:
        parties.update(p for p in message_parties if p)
    return parties


def entry_case(leaf: bytes) -> str | None:
    """The case a leaf is about (its ``case_id`` field), for the explorer's case filter."""
    if b'"case_id":' not in leaf:  # most leaves: no parse
        return None
    case_id = orjson.loads(leaf).get("case_id")
    return case_id if isinstance(case_id, str) and case_id else None


def _sender_and_recipient(leaf: bytes) -> tuple[str, ...]:
    fields = orjson.loads(leaf)
    return tuple(str(fields[k]) for k in ("sender", "recipient") if fields.get(k))


async def _lock(session: AsyncSession, *, wait: bool) -> bool:
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        # SQLite: this first statement begins the transaction with BEGIN IMMEDIATE, which
        # holds the database write lock until commit.
        await session.execute(text("SELECT 1"))
        return True
    if wait:
        await session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(LOCK_KEY))))


_MODELS = {
    model.__tablename__: model
    for model in (AuditLogEntry, AuditNode, AuditEntryParty, AuditEntryCase)
}


async def _insert_rows(session: AsyncSession, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the session's transaction: COPY on PostgreSQL (an executemany of
    thousands of rows costs more than hashing them), one executemany on SQLite."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        await session.execute(insert(_MODELS[table]), rows)
        return
    columns = list(rows[0])
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # psycopg.AsyncConnection, inside this transaction
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row([row[column] for column in columns])


async def _message_parties(
    session: AsyncSession, message_ids: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Sender and recipient of each message, from its message:accepted leaf (or the
    message:approved leaf of one that was held)."""
    found: dict[str, tuple[str, ...]] = {}
    for start in range(0, len(message_ids), _LOOKUP_CHUNK):
        chunk = message_ids[start : start + _LOOKUP_CHUNK]
        rows = await session.execute(
            select(AuditEvent.message_id, AuditEvent.leaf).where(
                AuditEvent.kind.in_(_NAMING_PARTIES),
                AuditEvent.message_id.in_(chunk),
            )
        )
        for message_id, leaf in rows.all():
            if message_id is not None:
                found[message_id] = _sender_and_recipient(bytes(leaf))
    return found


async def _log_size(session: AsyncSession) -> int:
    last = await session.scalar(select(func.max(AuditLogEntry.idx)))
    return 0 if last is None else int(last) + 1


async def sequence_batch(
    session: AsyncSession,
    *,
    signer: Signer,
    origin: str,
    batch_size: int,
    wait: bool = True,
    now: dt.datetime | None = None,
) -> Batch | None:
    """Sequence up to ``batch_size`` queued leaves and sign the new checkpoint, in the
    session's transaction (the caller commits).

    The first run on an empty log signs the checkpoint of the empty tree. Returns the outcome,
    or None when ``wait`` is false and another sequencer holds the lock.

    Raises:
        SequencerError: the stored log does not match the latest checkpoint.
        audit.CheckpointError, audit.NoteError: the origin or signer cannot sign a checkpoint.
    """
    if not await _lock(session, wait=wait):
        return None
    when = now or utcnow()
    latest = await latest_checkpoint(session)
    size = await _log_size(session)
    if (0 if latest is None else latest.size) != size:
        raise SequencerError(
            f"the log holds {size} entries but the latest checkpoint covers "
            f"{0 if latest is None else latest.size}"
        )
    queued = (
        await session.execute(
            select(
                AuditEvent.id,
                AuditEvent.kind,
                AuditEvent.participant_id,
                AuditEvent.message_id,
                AuditEvent.leaf,
            )
            .join(AuditUnsequenced, AuditUnsequenced.event_ref == AuditEvent.id)
            .order_by(AuditUnsequenced.event_ref)
            .limit(batch_size)
        )
    ).all()
    if not queued and latest is not None:
        return Batch(size=size, added=0, checkpoint=latest.note)

    frontier = await with_stored_nodes(session, lambda reader: Frontier.from_reader(reader, size))
    expected = EMPTY_ROOT if latest is None else bytes(latest.root_hash)
    if frontier.root() != expected:
        raise SequencerError(
            f"the stored tree of size {size} does not hash to the root of the latest checkpoint: "
            "audit_nodes was changed; refusing to sign on top of it"
        )

    accepted_here = {
        row.message_id: _sender_and_recipient(bytes(row.leaf))
        for row in queued
        if row.kind in _NAMING_PARTIES and row.message_id
    }
    lookup = sorted(
        {
            row.message_id
            for row in queued
            if row.kind in MESSAGE_LIFECYCLE
            and row.message_id
            and row.message_id not in accepted_here
        }
    )
    parties_of = {**await _message_parties(session, lookup), **accepted_here}

    entries: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    parties: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    for offset, row in enumerate(queued):
        index = size + offset
        leaf = bytes(row.leaf)
        hashed = leaf_hash(leaf)
        entries.append(
            {"idx": index, "event_ref": row.id, "leaf_hash": hashed, "sequenced_at": when}
        )
        nodes.extend(
            {"level": level, "idx": idx, "hash": value}
            for level, idx, value in frontier.append(hashed)
        )
        message_parties = parties_of.get(row.message_id, ()) if row.message_id else ()
        parties.extend(
            {"participant_id": pid, "idx": index}
            for pid in sorted(entry_parties(row.kind, row.participant_id, message_parties))
        )
        case_id = entry_case(leaf)
        if case_id is not None:
            cases.append({"case_id": case_id, "idx": index})

    if entries:
        await _insert_rows(session, AuditLogEntry.__tablename__, entries)
        await _insert_rows(session, AuditNode.__tablename__, nodes)
        await _insert_rows(session, AuditEntryParty.__tablename__, parties)
        await _insert_rows(session, AuditEntryCase.__tablename__, cases)
        refs = [entry["event_ref"] for entry in entries]
        if session.get_bind().dialect.name == "postgresql":  # one array parameter
            await session.execute(
                text("DELETE FROM audit_unsequenced WHERE event_ref = ANY(:refs)"), {"refs": refs}
            )
            refs = []
        for start in range(0, len(refs), _LOOKUP_CHUNK):
            await session.execute(
                delete(AuditUnsequenced).where(
                    AuditUnsequenced.event_ref.in_(refs[start : start + _LOOKUP_CHUNK])
                )
            )
    checkpoint = Checkpoint(origin, frontier.size, frontier.root())
    note = sign_checkpoint(checkpoint, signer)
    await session.execute(
        insert(AuditCheckpoint),
        [
            {
                "size": checkpoint.size,
                "root_hash": checkpoint.root_hash,
                "note": note,
                "created_at": when,
            }
        ],
    )
    return Batch(size=checkpoint.size, added=len(entries), checkpoint=note)
