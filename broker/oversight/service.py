"""Recording audit events: one leaf per event, in the caller's transaction.

A leaf is canonical JSON (sorted keys, no whitespace) of metadata and digests: the event kind,
time, actor, participants, ids, legal basis, policy pack hash and rule ids, justification for
consultations, SHA-256 digests. Never content, never a person's name or identifier in clear.
Because the leaf is flushed with the event's own rows, the event and its leaf commit together
or not at all.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.db import utcnow
from broker.core.ids import uuid7
from broker.oversight.models import AuditEvent


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
    ACCOUNT_CREATED = "account:created"
    ACCOUNT_UPDATED = "account:updated"
    POLICY_LOADED = "policy:loaded"
    CONSENT_REQUESTED = "consent:requested"
    CONSENT_GRANTED = "consent:granted"
    CONSENT_REFUSED = "consent:refused"


def canonical_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)


def build_leaf(
    *,
    kind: AuditKind,
    node: str,
    at: dt.datetime,
    event_id: str,
    actor: dict[str, str | None] | None,
    fields: dict[str, Any],
) -> bytes:
    leaf: dict[str, Any] = {
        "v": 1,
        "event_id": event_id,
        "kind": str(kind),
        "node": node,
        "time": at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "actor": actor or {"participant": None, "account": None},
    }
    leaf.update({k: v for k, v in fields.items() if v is not None})
    return canonical_json(leaf)


def audit_row(
    *,
    kind: AuditKind,
    node: str,
    actor: dict[str, str | None] | None,
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


async def record_event(
    session: AsyncSession,
    *,
    kind: AuditKind,
    node: str,
    actor: dict[str, str | None] | None,
    participant_id: str | None = None,
    message_id: str | None = None,
    at: dt.datetime | None = None,
    **fields: Any,
) -> str:
    """Write one audit leaf in the session's transaction; return its event id."""
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
    return str(row["event_id"])
