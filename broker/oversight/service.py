"""Recording audit events (one leaf per event, in the caller's transaction) and reading the
sequenced log (checkpoints, entries, proofs, exports).

A leaf is canonical JSON (sorted keys, no whitespace) of metadata and digests: the event kind,
time, actor, participants, ids, legal basis, policy pack hash and rule ids, justification for
consultations, SHA-256 digests. Never content, never a person's name or identifier in clear.
Because the leaf is flushed with the event's own rows, the event and its leaf commit together
or not at all.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from audit import (
    Checkpoint,
    HashReader,
    consistency_proof,
    consistency_proof_line,
    entry_line,
    header_line,
    inclusion_proof,
    root_hash,
)
from broker.core.context import NO_ACTOR, Actor
from broker.core.db import utcnow
from broker.core.errors import InvalidState, NotFound, SchemaViolation
from broker.core.ids import uuid7
from broker.oversight.models import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEntryCase,
    AuditEntryParty,
    AuditEvent,
    AuditLogEntry,
    AuditText,
)
from broker.oversight.nodes import with_stored_nodes


class AuditKind(enum.StrEnum):
    MESSAGE_ACCEPTED = "message:accepted"
    MESSAGE_REFUSED = "message:refused"
    MESSAGE_DELIVERED = "message:delivered"
    MESSAGE_RECEIPTED = "message:receipted"
    MESSAGE_DEAD_LETTERED = "message:dead_lettered"
    MESSAGE_REQUEUED = "message:requeued"
    CONTENT_CONSULTED = "content:consulted"
    PARTICIPANT_REGISTERED = "participant:registered"
    PARTICIPANT_UPDATED = "participant:updated"
    KEY_REGISTERED = "key:registered"
    KEY_GENERATED = "key:generated"
    KEY_REVOKED = "key:revoked"
    KEY_ROTATED = "key:rotated"
    ACCOUNT_CREATED = "account:created"
    ACCOUNT_UPDATED = "account:updated"
    ACCOUNT_PASSWORD_CHANGED = "account:password-changed"  # noqa: S105 - an event kind
    ACCOUNT_SECRET_RESET = "account:secret-reset"  # noqa: S105 - an event kind
    SIGNIN_SUCCEEDED = "signin:succeeded"
    SIGNIN_FAILED = "signin:failed"  # written by nodes before 0008: now auth:failed
    AUTH_FAILED = "auth:failed"
    AUTH_LOCKED = "auth:locked"
    POLICY_LOADED = "policy:loaded"
    CONSENT_REQUESTED = "consent:requested"
    CONSENT_GRANTED = "consent:granted"
    CONSENT_REFUSED = "consent:refused"
    CASE_OPENED = "case:opened"
    CASE_TRANSITION = "case:transition"
    CASE_NOTICE = "case:notice"
    EVIDENCE_STORED = "evidence:stored"
    CONTENT_ERASED = "content:erased"
    RETENTION_EXTENDED = "retention:extended"
    MATCH_QUERIED = "match:queried"
    MATCH_ANSWERED = "match:answered"
    MESSAGE_HELD = "message:held"
    MESSAGE_APPROVED = "message:approved"
    MESSAGE_REJECTED = "message:rejected"
    FOLLOW_UP_OPENED = "follow_up:opened"
    FOLLOW_UP_DUE = "follow_up:due"
    FOLLOW_UP_DONE = "follow_up:done"
    FEDERATION_PEER_CONFIGURED = "federation:peer-configured"
    FEDERATION_DIRECTORY_APPLIED = "federation:directory-applied"
    FEDERATION_DIRECTORY_REFUSED = "federation:directory-refused"


def canonical_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def build_leaf(
    *,
    kind: AuditKind,
    node: str,
    at: dt.datetime,
    event_id: str,
    actor: Actor | None,
    fields: dict[str, Any],
) -> bytes:
    leaf: dict[str, Any] = {
        "v": 1,
        "event_id": event_id,
        "kind": str(kind),
        "node": node,
        "time": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "actor": (actor or NO_ACTOR).to_json(),
    }
    leaf.update({k: v for k, v in fields.items() if v is not None})
    return canonical_json(leaf)


def audit_row(
    *,
    kind: AuditKind,
    node: str,
    actor: Actor | None,
    participant_id: str | None = None,
    message_id: str | None = None,
    at: dt.datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The row for one audit event, for callers that insert many in one statement."""
    when = at or utcnow()
    event_id = str(uuid7())
    if message_id is not None:
        fields.setdefault("message_id", message_id)
    return {
        "event_id": event_id,
        "kind": str(kind),
        "message_id": message_id,
        "participant_id": participant_id,
        "created_at": when,
        "leaf": build_leaf(
            kind=kind, node=node, at=when, event_id=event_id, actor=actor, fields=fields
        ),
    }


TEXT_SALT_BYTES = 16
TEXT_DEFAULT_RETENTION = dt.timedelta(days=1826)
"""How long the text of a leaf about no single item (an export) is kept: five years, the
default retention of a message (P17)."""


def commitment(salt: bytes, text: str) -> str:
    """The leaf's commitment to a text kept in ``audit_texts``: hex SHA-256(salt || UTF-8)."""
    return hashlib.sha256(salt + text.encode("utf-8")).hexdigest()


def commit_texts(
    texts: Mapping[str, str | None],
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The leaf's ``<field>_commitment`` fields for free text that may name a person (a
    justification, a review's reasons, a declared purpose), and the texts with their salts
    to keep in ``audit_texts`` (``kept_text_rows`` completes them). Empty texts are left out."""
    fields: dict[str, str] = {}
    kept: list[dict[str, Any]] = []
    for name, text in texts.items():
        if not text:
            continue
        salt = secrets.token_bytes(TEXT_SALT_BYTES)
        fields[f"{name}_commitment"] = commitment(salt, text)
        kept.append({"field": name, "text": text, "salt": salt})
    return fields, kept


def kept_text_rows(
    kept: Sequence[Mapping[str, Any]],
    *,
    event_id: str,
    message_id: str | None,
    case_id: str | None,
    until: dt.datetime | None,
) -> list[dict[str, Any]]:
    """The ``audit_texts`` rows of ``commit_texts``' kept texts for the leaf ``event_id``:
    erased with ``message_id`` or ``case_id``, or at ``until``."""
    return [
        {
            **k,
            "event_id": event_id,
            "message_id": message_id,
            "case_id": case_id,
            "retention_until": until,
        }
        for k in kept
    ]


async def record_event(
    session: AsyncSession,
    *,
    kind: AuditKind,
    node: str,
    actor: Actor | None,
    participant_id: str | None = None,
    message_id: str | None = None,
    at: dt.datetime | None = None,
    texts: Mapping[str, str | None] | None = None,
    texts_until: dt.datetime | None = None,
    **fields: Any,
) -> str:
    """Write one audit leaf in the session's transaction; return its event id.

    ``texts`` (a justification, a review's reasons, a purpose: free text that may name a
    person) do not go into the leaf: it carries ``<field>_commitment`` instead, and the text
    with its salt goes to ``audit_texts``, erased with the message or case the leaf names
    (``message_id``, ``fields["case_id"]``), or at ``texts_until`` (default: five years for a
    leaf about neither; give it for a leaf about an item that is never stored, such as a
    refused message)."""
    commitments, kept = commit_texts(texts or {})
    fields.update(commitments)
    row = audit_row(
        kind=kind,
        node=node,
        actor=actor,
        participant_id=participant_id,
        message_id=message_id,
        at=at,
        **fields,
    )
    await session.execute(insert(AuditEvent), [row])
    if kept:
        case_id = fields.get("case_id")
        about_none = message_id is None and case_id is None
        until = texts_until or (row["created_at"] + TEXT_DEFAULT_RETENTION if about_none else None)
        await session.execute(
            insert(AuditText),
            kept_text_rows(
                kept,
                event_id=str(row["event_id"]),
                message_id=message_id,
                case_id=case_id,
                until=until,
            ),
        )
    return str(row["event_id"])


@dataclass(frozen=True)
class KeptText:
    """A text a leaf commits to (``<field>_commitment``), as ``audit_texts`` keeps it:
    ``text`` None once erased with its item; ``matches`` whether SHA-256(salt || text)
    equals the leaf's commitment (a kept text that does not match was changed)."""

    field: str
    text: str | None
    matches: bool | None


async def kept_texts(session: AsyncSession, leaf: Mapping[str, Any]) -> list[KeptText]:
    """The texts ``leaf`` commits to, in field order, each checked against its commitment."""
    names = sorted(k.removesuffix("_commitment") for k in leaf if k.endswith("_commitment"))
    if not names:
        return []
    rows = await session.execute(
        select(AuditText.field, AuditText.text, AuditText.salt).where(
            AuditText.event_id == str(leaf.get("event_id")), AuditText.field.in_(names)
        )
    )
    kept = {str(f): (str(t), bytes(salt)) for f, t, salt in rows.all()}
    out = []
    for name in names:
        if name not in kept:
            out.append(KeptText(name, None, None))
            continue
        text, salt = kept[name]
        expected = str(leaf[f"{name}_commitment"])
        out.append(KeptText(name, text, commitment(salt, text) == expected))
    return out


async def erase_texts(
    session: AsyncSession,
    *,
    message_ids: Sequence[str] = (),
    case_id: str | None = None,
    due_by: dt.datetime | None = None,
) -> int:
    """Delete the kept texts about erased messages, an erased case, or whose own deadline
    passed by ``due_by``; return how many. The leaves keep their commitments."""
    clauses: list[ColumnElement[bool]] = []
    if message_ids:
        clauses.append(AuditText.message_id.in_(list(message_ids)))
    if case_id is not None:
        clauses.append(AuditText.case_id == case_id)
    if due_by is not None:
        clauses.append(AuditText.retention_until <= due_by)
    if not clauses:
        return 0
    result = await session.execute(delete(AuditText).where(or_(*clauses)))
    return int(getattr(result, "rowcount", 0) or 0)


async def record_consultation(
    session: AsyncSession,
    *,
    node: str,
    actor: Actor,
    justification: str,
    case_id: str | None = None,
    message_id: str | None = None,
    **what: Any,
) -> str:
    """Write the one ``content:consulted`` leaf of a content read (a message's payload, a
    case's request, an evidence file), in the session's transaction: who read (``actor``, whose
    participant the leaf belongs to), what (the case or message and ``what`` names: the
    ``object``, digests, sizes, the reader's role) and why (the checked ``justification``,
    kept in ``audit_texts`` beside the leaf's commitment to it). Return its event id."""
    if case_id is not None:
        what["case_id"] = case_id
    return await record_event(
        session,
        kind=AuditKind.CONTENT_CONSULTED,
        node=node,
        actor=actor,
        participant_id=actor.participant_id,
        message_id=message_id,
        texts={"justification": justification},
        **what,
    )


@dataclass(frozen=True, slots=True)
class Consultation:
    """One content read, as its ``content:consulted`` leaf records it: never the content."""

    id: int
    at: dt.datetime
    participant: str | None
    account: str | None
    case_id: str | None
    message_id: str | None
    object: str
    role: str | None
    justification: str | None
    """The text while it is kept (``audit_texts``, or a leaf from before revision 0012 that
    holds it); None once erased with the item read."""


async def list_consultations(
    session: AsyncSession,
    *,
    participant: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before: int | None = None,
    limit: int,
) -> list[Consultation]:
    """Content reads, newest first, ``limit`` at most: of ``participant``'s people if given,
    recorded at ``since`` or later and before ``until``, with an id below ``before`` (the
    keyset cursor). One query on ``audit_events``' indexed kind and participant; only the
    rows' leaves of this page are parsed (LED art. 25: who read what, when and why)."""
    stmt = select(AuditEvent.id, AuditEvent.created_at, AuditEvent.leaf).where(
        AuditEvent.kind == AuditKind.CONTENT_CONSULTED
    )
    if participant is not None:
        stmt = stmt.where(AuditEvent.participant_id == participant)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    if before is not None:
        stmt = stmt.where(AuditEvent.id < before)
    rows = (await session.execute(stmt.order_by(AuditEvent.id.desc()).limit(limit))).all()
    parsed = [(row_id, at, orjson.loads(leaf)) for row_id, at, leaf in rows]
    texts = await session.execute(
        select(AuditText.event_id, AuditText.text).where(
            AuditText.field == "justification",
            AuditText.event_id.in_([str(f.get("event_id")) for _, _, f in parsed]),
        )
    )
    kept: dict[str, str] = {str(event_id): str(text) for event_id, text in texts.all()}
    out = []
    for row_id, at, fields in parsed:
        actor = fields.get("actor") or {}
        out.append(
            Consultation(
                id=row_id,
                at=at,
                participant=actor.get("participant"),
                account=actor.get("account"),
                case_id=fields.get("case_id"),
                message_id=fields.get("message_id"),
                object=str(
                    fields.get("object") or ("message" if fields.get("message_id") else "case")
                ),
                role=fields.get("role"),
                justification=kept.get(str(fields.get("event_id")), fields.get("justification")),
            )
        )
    return out


# Reading the log ---------------------------------------------------------------------------
#
# Everything below reads only what a signed checkpoint covers: entries, proofs and exports
# never show a tree the node has not published. ``viewer`` is the participant whose view is
# asked for (only the entries `broker.oversight.sequencer.entry_parties` gives it), or None
# for oversight, which sees every entry.

EXPORT_CHUNK = 2000
"""Entries read per query while exporting (memory is bounded by this, not by the log)."""


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    event_id: str
    kind: str
    message_id: str | None
    created_at: dt.datetime
    sequenced_at: dt.datetime
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class PublishedCheckpoint:
    """A stored checkpoint and the witness cosignatures collected for it."""

    row: AuditCheckpoint
    cosignatures: tuple[AuditCosignature, ...]

    @property
    def size(self) -> int:
        return int(self.row.size)

    @property
    def root_hash(self) -> bytes:
        return bytes(self.row.root_hash)

    @property
    def note(self) -> str:
        """The signed note with the cosignature lines after the node's signature."""
        return self.row.note + "".join(c.line for c in self.cosignatures)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.row.note.partition("\n")[0], self.size, self.root_hash)


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    return await session.scalar(
        select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    )


async def _with_cosignatures(
    session: AsyncSession, row: AuditCheckpoint | None
) -> PublishedCheckpoint | None:
    if row is None:
        return None
    cosignatures = (
        await session.scalars(
            select(AuditCosignature)
            .where(AuditCosignature.checkpoint_size == row.size)
            .order_by(AuditCosignature.witness_name, AuditCosignature.witness_key_id)
        )
    ).all()
    return PublishedCheckpoint(row, tuple(cosignatures))


async def published_checkpoint(
    session: AsyncSession, *, size: int | None = None, witnessed: bool = False
) -> PublishedCheckpoint:
    """The latest checkpoint (or the one of ``size``; or the latest with a cosignature).

    Raises:
        NotFound: no such checkpoint (none yet: the sequencer has not run).
    """
    stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
    if size is not None:
        stmt = stmt.where(AuditCheckpoint.size == size)
    if witnessed:
        stmt = stmt.where(
            select(AuditCosignature.id)
            .where(AuditCosignature.checkpoint_size == AuditCheckpoint.size)
            .exists()
        )
    found = await _with_cosignatures(session, await session.scalar(stmt))
    if found is None:
        if size is not None:
            raise NotFound(f"no checkpoint of size {size} was published", field="size")
        what = "witnessed checkpoint" if witnessed else "checkpoint"
        raise NotFound(f"no {what} has been published yet")
    return found


async def checkpoint_note_at(session: AsyncSession, size: int) -> str | None:
    """The signed note (with cosignatures) of the checkpoint of exactly ``size``, if any."""
    found = await _with_cosignatures(session, await session.get(AuditCheckpoint, size))
    return None if found is None else found.note


_EntrySelect = Select[int, str, str, str | None, dt.datetime, dt.datetime, bytes, bytes]


def _entry_query(viewer: str | None) -> _EntrySelect:
    stmt = select(
        AuditLogEntry.idx,
        AuditEvent.event_id,
        AuditEvent.kind,
        AuditEvent.message_id,
        AuditEvent.created_at,
        AuditLogEntry.sequenced_at,
        AuditEvent.leaf,
        AuditLogEntry.leaf_hash,
    ).join(AuditEvent, AuditEvent.id == AuditLogEntry.event_ref)
    if viewer is not None:
        stmt = stmt.join(
            AuditEntryParty,
            (AuditEntryParty.idx == AuditLogEntry.idx) & (AuditEntryParty.participant_id == viewer),
        )
    return stmt.order_by(AuditLogEntry.idx)


def _entry(row: Any) -> Entry:
    return Entry(
        index=int(row[0]),
        event_id=row[1],
        kind=row[2],
        message_id=row[3],
        created_at=row[4],
        sequenced_at=row[5],
        leaf=bytes(row[6]),
        leaf_hash=bytes(row[7]),
    )


async def list_entries(
    session: AsyncSession, *, viewer: str | None, start: int, end: int | None, page_size: int
) -> tuple[int, int, list[Entry]]:
    """Entries with ``start <= index < end`` that ``viewer`` may see; returns (tree size,
    end, entries). ``end`` defaults to a full page or the end of the published log.

    Raises:
        NotFound: no checkpoint is published yet.
        SchemaViolation: the range is empty, reversed, wider than a page or beyond the log.
    """
    size = (await published_checkpoint(session)).size
    stop = min(start + page_size, size) if end is None else end
    if start > size:
        raise SchemaViolation(f"start {start} is beyond the log's {size} entries", field="start")
    if stop < start:
        raise SchemaViolation(f"end {stop} is before start {start}", field="end")
    if stop > size:
        raise SchemaViolation(
            f"end {stop} is beyond the {size} entries of the latest checkpoint", field="end"
        )
    if stop - start > page_size:
        raise SchemaViolation(
            f"at most {page_size} entries per page: ask for end <= {start + page_size}",
            field="end",
        )
    rows = await session.execute(
        _entry_query(viewer).where(AuditLogEntry.idx >= start, AuditLogEntry.idx < stop)
    )
    return size, stop, [_entry(row) for row in rows.all()]


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """What the audit explorer narrows the log to; every field is optional."""

    kind: str | None = None
    participant_id: str | None = None
    case_id: str | None = None
    message_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class EntrySearch:
    """A page of the explorer: the latest checkpoint, the entries (newest first) with their
    inclusion proofs in the checkpoint's tree, and the index to page on from."""

    checkpoint: PublishedCheckpoint
    proofs: list[tuple[Entry, list[bytes]]]
    next_before: int | None


async def search_entries(
    session: AsyncSession,
    *,
    viewer: str | None,
    where: EntryFilter,
    before: int | None,
    limit: int,
) -> EntrySearch:
    """The published entries ``viewer`` may see that match ``where``, newest first, with
    index below ``before`` (default: all), at most ``limit``, each with its inclusion proof in
    the tree of the latest checkpoint. One query on indexed columns, then the proofs from
    the stored subtree hashes.

    Raises:
        NotFound: no checkpoint is published yet.
    """
    published = await published_checkpoint(session)
    size = published.size
    stop = size if before is None else min(before, size)
    stmt = (
        _entry_query(viewer)
        .order_by(None)
        .order_by(AuditLogEntry.idx.desc())
        .where(AuditLogEntry.idx < stop)
        .limit(limit + 1)
    )
    if where.kind is not None:
        stmt = stmt.where(AuditEvent.kind == where.kind)
    if where.message_id is not None:
        stmt = stmt.where(AuditEvent.message_id == where.message_id)
    if where.since is not None:
        stmt = stmt.where(AuditEvent.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(AuditEvent.created_at < where.until)
    if where.participant_id is not None:
        stmt = stmt.where(
            select(AuditEntryParty.idx)
            .where(
                AuditEntryParty.idx == AuditLogEntry.idx,
                AuditEntryParty.participant_id == where.participant_id,
            )
            .exists()
        )
    if where.case_id is not None:
        stmt = stmt.where(
            select(AuditEntryCase.idx)
            .where(AuditEntryCase.idx == AuditLogEntry.idx, AuditEntryCase.case_id == where.case_id)
            .exists()
        )
    entries = [_entry(row) for row in (await session.execute(stmt)).all()]
    more = len(entries) > limit
    entries = entries[:limit]
    if not entries:
        return EntrySearch(published, [], None)

    def compute(reader: HashReader) -> list[list[bytes]]:
        return [inclusion_proof(reader, e.index, size) for e in entries]

    proofs = await with_stored_nodes(session, compute)
    return EntrySearch(
        published, list(zip(entries, proofs, strict=True)), entries[-1].index if more else None
    )


async def _unpublished_event_of(
    session: AsyncSession, *, viewer: str | None, event_id: str | None, message_id: str | None
) -> bool:
    """Whether the viewer's own event with this id (or for this message) awaits a checkpoint."""
    stmt = select(AuditEvent.id).limit(1)
    if event_id is not None:
        stmt = stmt.where(AuditEvent.event_id == event_id)
    else:
        stmt = stmt.where(AuditEvent.message_id == message_id)
    if viewer is not None:
        stmt = stmt.where(AuditEvent.participant_id == viewer)
    return await session.scalar(stmt) is not None


async def inclusion_proofs(
    session: AsyncSession,
    *,
    viewer: str | None,
    index: int | None = None,
    event_id: str | None = None,
    message_id: str | None = None,
    tree_size: int | None = None,
    limit: int,
) -> tuple[int, bytes, list[tuple[Entry, list[bytes]]]]:
    """Inclusion proofs of the entries chosen by exactly one of ``index``, ``event_id`` or
    ``message_id`` (every entry about the message the viewer may see, at most ``limit``), in
    the tree of ``tree_size`` (default: the latest checkpoint). Returns (tree size, its root,
    [(entry, proof)]).

    Raises:
        SchemaViolation: not exactly one selector, or a tree size outside the published log.
        NotFound: nothing the viewer may see matches (or no checkpoint is published yet).
        InvalidState: the viewer's event exists but is not yet in a published checkpoint.
    """
    chosen = [
        name
        for name, v in {"index": index, "event_id": event_id, "message_id": message_id}.items()
        if v is not None
    ]
    if len(chosen) != 1:
        raise SchemaViolation(
            "give exactly one of index, event_id or message_id", field=",".join(chosen) or "index"
        )
    published = (await published_checkpoint(session)).size
    size = published if tree_size is None else tree_size
    if not 0 < size <= published:
        raise SchemaViolation(
            f"tree_size must be in 1..{published} (the latest checkpoint's size)",
            field="tree_size",
        )
    stmt = _entry_query(viewer).where(AuditLogEntry.idx < size).limit(limit)
    if index is not None:
        if index >= size:
            raise SchemaViolation(f"index {index} is not in the tree of size {size}", field="index")
        stmt = stmt.where(AuditLogEntry.idx == index)
    elif event_id is not None:
        stmt = stmt.where(AuditEvent.event_id == event_id)
    else:
        stmt = stmt.where(AuditEvent.message_id == message_id)
    entries = [_entry(row) for row in (await session.execute(stmt)).all()]
    if not entries:
        if index is None and await _unpublished_event_of(
            session, viewer=viewer, event_id=event_id, message_id=message_id
        ):
            raise InvalidState(
                "that event is recorded but not yet in a published checkpoint of this size; "
                "ask again after the next checkpoint"
            )
        raise NotFound(f"no audit entry you may see matches {chosen[0]}", field=chosen[0])

    def compute(reader: HashReader) -> tuple[bytes, list[list[bytes]]]:
        return root_hash(reader, size), [inclusion_proof(reader, e.index, size) for e in entries]

    root, proofs = await with_stored_nodes(session, compute)
    return size, root, list(zip(entries, proofs, strict=True))


async def consistency(
    session: AsyncSession, *, old: int, new: int | None
) -> tuple[int, bytes, bytes, list[bytes]]:
    """RFC 9162 consistency proof from the tree of ``old`` entries to that of ``new`` (default:
    the latest checkpoint). Returns (new, old root, new root, proof).

    Raises:
        SchemaViolation: not ``1 <= old <= new <= `` the latest checkpoint's size.
        NotFound: no checkpoint is published yet.
    """
    published = (await published_checkpoint(session)).size
    size = published if new is None else new
    if size > published:
        raise SchemaViolation(
            f"new {size} is beyond the {published} entries of the latest checkpoint", field="new"
        )
    if not 1 <= old <= size:
        raise SchemaViolation(
            f"old must be in 1..{size}: there is no consistency proof from the empty tree",
            field="old",
        )

    def compute(reader: HashReader) -> tuple[bytes, bytes, list[bytes]]:
        return (
            root_hash(reader, old),
            root_hash(reader, size),
            consistency_proof(reader, old, size),
        )

    old_root, new_root, proof = await with_stored_nodes(session, compute)
    return size, old_root, new_root, proof


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What an export holds, settled before the first byte is sent."""

    note: str
    checkpoint: Checkpoint
    proof_lines: tuple[bytes, ...]

    @property
    def size(self) -> int:
        return self.checkpoint.size


async def plan_export(
    session: AsyncSession, *, size: int | None, consistency_from: Sequence[int]
) -> ExportPlan:
    """The checkpoint an export covers (the latest, or the published one of ``size``) and the
    consistency proof lines from each size in ``consistency_from``.

    Raises:
        NotFound: no such checkpoint.
        SchemaViolation: a consistency size outside 1..size.
    """
    published = await published_checkpoint(session, size=size)
    n = published.size
    for old in consistency_from:
        if not 1 <= old <= n:
            raise SchemaViolation(
                f"consistency_from {old} must be in 1..{n}", field="consistency_from"
            )

    def compute(reader: HashReader) -> list[bytes]:
        return [
            consistency_proof_line(old, root_hash(reader, old), consistency_proof(reader, old, n))
            for old in consistency_from
        ]

    lines = await with_stored_nodes(session, compute) if consistency_from else []
    return ExportPlan(published.note, published.checkpoint(), tuple(lines))


async def export_bundle(
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    plan: ExportPlan,
    *,
    chunk: int = EXPORT_CHUNK,
) -> AsyncIterator[bytes]:
    """The ``palermo-audit-bundle/v1`` bytes of ``plan`` (see ``audit/BUNDLE.md``), one chunk
    of entries at a time, each read in its own short transaction from ``sessions()``.

    Entries are written as stored, with their stored indices: a gap or a changed leaf is the
    verifier's to find, not the exporter's to hide.
    """
    yield header_line(plan.note, plan.checkpoint)
    after = 0
    while after < plan.size:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(AuditLogEntry.idx, AuditEvent.leaf)
                    .join(AuditEvent, AuditEvent.id == AuditLogEntry.event_ref)
                    .where(AuditLogEntry.idx >= after, AuditLogEntry.idx < plan.size)
                    .order_by(AuditLogEntry.idx)
                    .limit(chunk)
                )
            ).all()
        if not rows:
            break
        yield b"".join(entry_line(int(idx), bytes(leaf)) for idx, leaf in rows)
        after = int(rows[-1][0]) + 1
    for line in plan.proof_lines:
        yield line


__all__ = [
    "EXPORT_CHUNK",
    "AuditKind",
    "Entry",
    "EntryFilter",
    "EntrySearch",
    "ExportPlan",
    "KeptText",
    "PublishedCheckpoint",
    "audit_row",
    "build_leaf",
    "canonical_json",
    "checkpoint_note_at",
    "commit_texts",
    "consistency",
    "export_bundle",
    "inclusion_proofs",
    "kept_text_rows",
    "kept_texts",
    "latest_checkpoint",
    "list_entries",
    "plan_export",
    "published_checkpoint",
    "record_consultation",
    "record_event",
    "search_entries",
]
