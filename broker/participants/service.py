"""The participant registry and its keys.

Invariants: a participant id is ``<iso-3166 alpha-2>.<slug>`` and its jurisdiction is the
prefix; a custodial private key exists only encrypted under the node master key; revocation
takes effect at once (``revoked_at`` = now); a rotated key keeps verifying what it signed until
its own ``not_after``. Every change writes an audit leaf in the caller's transaction.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import adapters
from adapters.contracts import DestinationRules
from broker.core import crypto
from broker.core.context import Actor, NodeContext
from broker.core.db import utcnow
from broker.core.errors import Conflict, InvalidState, NotFound, SchemaViolation
from broker.envelopes.schemas import PARTICIPANT_ID_PATTERN
from broker.oversight.service import AuditKind, record_event
from broker.participants.models import (
    KeyPurpose,
    Participant,
    ParticipantKey,
    ParticipantKind,
    ParticipantStatus,
)

KNOWN_ADAPTERS = frozenset(adapters.ADAPTERS)
ALGORITHMS = {KeyPurpose.SIGNING: "ed25519", KeyPurpose.ENCRYPTION: "x25519"}


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    key: ParticipantKey
    private_key: bytes | None  # returned once for self-held keys made by the CLI


async def register_participant(
    session: AsyncSession,
    *,
    node: NodeContext,
    participant_id: str,
    kind: str,
    display_name: str,
    adapter: str = "inbox",
    adapter_config: dict[str, Any] | None = None,
    rules: DestinationRules = adapters.STRICT,
    actor: Actor | None,
) -> Participant:
    """Raises Conflict if the id exists; SchemaViolation for a malformed id, an unknown kind,
    an unknown adapter or an adapter configuration it cannot use."""
    if not re.fullmatch(PARTICIPANT_ID_PATTERN, participant_id):
        raise SchemaViolation(
            f"participant id {participant_id!r} is not <iso-3166 alpha-2>.<slug>", field="id"
        )
    if kind not in {k.value for k in ParticipantKind}:
        raise SchemaViolation(f"unknown participant kind {kind!r}", field="kind")
    if adapter not in KNOWN_ADAPTERS:
        raise SchemaViolation(f"unknown adapter {adapter!r}", field="adapter")
    checked_config = adapters.check_config(adapter, adapter_config, rules=rules)
    if await session.get(Participant, participant_id) is not None:
        raise Conflict(f"participant {participant_id} already exists")
    participant = Participant(
        id=participant_id,
        kind=kind,
        jurisdiction=participant_id[:2].upper(),
        display_name=display_name,
        status=ParticipantStatus.ACTIVE,
        adapter=adapter,
        adapter_config=checked_config,
        created_at=utcnow(),
    )
    session.add(participant)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.PARTICIPANT_REGISTERED,
        node=node.node_id,
        actor=actor,
        participant_id=participant_id,
        participant=participant_id,
        participant_kind=kind,
        jurisdiction=participant.jurisdiction,
    )
    return participant


async def get_participant(session: AsyncSession, participant_id: str) -> Participant:
    participant = await session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"no participant {participant_id}")
    return participant


async def list_participants(session: AsyncSession) -> list[Participant]:
    return list((await session.scalars(select(Participant).order_by(Participant.id))).all())


async def keys_of(session: AsyncSession, participant_id: str) -> list[ParticipantKey]:
    stmt = (
        select(ParticipantKey)
        .where(ParticipantKey.participant_id == participant_id)
        .order_by(ParticipantKey.created_at, ParticipantKey.kid)
    )
    return list((await session.scalars(stmt)).all())


async def keys_by_participant(session: AsyncSession) -> dict[str, list[ParticipantKey]]:
    rows = (await session.scalars(select(ParticipantKey).order_by(ParticipantKey.created_at))).all()
    out: dict[str, list[ParticipantKey]] = {}
    for key in rows:
        out.setdefault(key.participant_id, []).append(key)
    return out


async def update_participant(
    session: AsyncSession,
    *,
    node: NodeContext,
    participant_id: str,
    display_name: str | None,
    status: str | None,
    actor: Actor | None,
) -> Participant:
    participant = await get_participant(session, participant_id)
    changed = {}
    if display_name is not None and display_name != participant.display_name:
        participant.display_name = display_name
        changed["display_name"] = "changed"
    if status is not None and status != participant.status:
        participant.status = status
        changed["status"] = status
    if changed:
        await session.flush()
        await record_event(
            session,
            kind=AuditKind.PARTICIPANT_UPDATED,
            node=node.node_id,
            actor=actor,
            participant_id=participant_id,
            participant=participant_id,
            changes=changed,
        )
    return participant


def decode_public_key(value: str) -> bytes:
    """Raises SchemaViolation unless ``value`` is base64 of 32 bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SchemaViolation("public_key is not valid base64", field="public_key") from exc
    if len(raw) != 32:
        raise SchemaViolation("public_key must be 32 bytes", field="public_key")
    return raw


async def add_key(
    session: AsyncSession,
    *,
    node: NodeContext,
    participant_id: str,
    purpose: str,
    public_key: bytes | None,
    generate: bool,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    actor: Actor | None,
    custodial: bool = True,
) -> GeneratedKey:
    """Register ``public_key``, or generate a key pair: custodial (sealed under the master key)
    by default, or self-held (``custodial=False``: the private key is returned once, never
    stored). Raises NotFound, SchemaViolation, Conflict."""
    await get_participant(session, participant_id)
    purpose_enum = KeyPurpose(purpose)
    if generate == (public_key is not None):
        raise SchemaViolation("give either a public_key or generate=true", field="public_key")
    now = utcnow()
    start = not_before or now
    if not_after is not None and not_after <= start:
        raise SchemaViolation("not_after must be later than not_before", field="not_after")
    private: bytes | None = None
    sealed: bytes | None = None
    if public_key is None:
        if purpose_enum is KeyPurpose.SIGNING:
            private, public_key = crypto.generate_signing_key()
        else:
            private, public_key = crypto.generate_box_key()
        if custodial:
            sealed = crypto.secretbox_encrypt(node.master_key, private)
            private = None
    elif purpose_enum is KeyPurpose.ENCRYPTION:
        try:
            crypto.seal(public_key, b"\x00")
        except crypto.CryptoError as exc:
            raise SchemaViolation(
                "public_key is not usable for X25519 (a low-order point)", field="public_key"
            ) from exc
    kid = crypto.key_id(public_key)
    if await session.get(ParticipantKey, kid) is not None:
        raise Conflict(f"key {kid} is already registered")
    key = ParticipantKey(
        kid=kid,
        participant_id=participant_id,
        purpose=purpose_enum.value,
        algorithm=ALGORITHMS[purpose_enum],
        public_key=public_key,
        private_key_sealed=sealed,
        not_before=start,
        not_after=not_after,
        created_at=now,
    )
    session.add(key)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.KEY_GENERATED if generate else AuditKind.KEY_REGISTERED,
        node=node.node_id,
        actor=actor,
        participant_id=participant_id,
        participant=participant_id,
        kid=kid,
        purpose=purpose_enum.value,
        custodial=sealed is not None,
        public_key_sha256=crypto.key_id(public_key),
    )
    return GeneratedKey(key, private)


async def rotate_key(
    session: AsyncSession,
    *,
    node: NodeContext,
    participant_id: str,
    purpose: str,
    grace: dt.timedelta,
    public_key: bytes | None = None,
    custodial: bool = True,
    actor: Actor | None,
) -> GeneratedKey:
    """Add a new key and end the validity of the current ones after ``grace``, so what they
    signed keeps verifying until then. Audited as the new key's ``key:registered`` (or
    ``key:generated``) and a ``key:rotated`` naming the keys replaced and until when. Raises
    NotFound, SchemaViolation, Conflict."""
    now = utcnow()
    new = await add_key(
        session,
        node=node,
        participant_id=participant_id,
        purpose=purpose,
        public_key=public_key,
        generate=public_key is None,
        actor=actor,
        custodial=custodial,
    )
    ended = []
    end = now + grace
    for key in await keys_of(session, participant_id):
        if key.kid != new.key.kid and key.purpose == purpose and key.valid_at(now):
            if key.not_after is None or key.not_after > end:
                key.not_after = end
            ended.append(key.kid)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.KEY_ROTATED,
        node=node.node_id,
        actor=actor,
        participant_id=participant_id,
        participant=participant_id,
        kid=new.key.kid,
        purpose=purpose,
        replaced=ended,
        replaced_until=end,
    )
    return new


async def revoke_key(
    session: AsyncSession,
    *,
    node: NodeContext,
    participant_id: str,
    kid: str,
    reason: str,
    actor: Actor | None,
) -> ParticipantKey:
    """Revoke at once. Raises NotFound, InvalidState (already revoked)."""
    key = await session.get(ParticipantKey, kid)
    if key is None or key.participant_id != participant_id:
        raise NotFound(f"participant {participant_id} has no key {kid}")
    if key.revoked_at is not None:
        raise InvalidState(f"key {kid} was revoked at {key.revoked_at.isoformat()}")
    key.revoked_at = utcnow()
    key.revocation_reason = reason
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.KEY_REVOKED,
        node=node.node_id,
        actor=actor,
        participant_id=participant_id,
        participant=participant_id,
        kid=kid,
    )
    return key


def current_key(
    keys: list[ParticipantKey], purpose: str, *, custodial: bool
) -> ParticipantKey | None:
    """The newest key of ``purpose`` valid now (custodial only when asked)."""
    now = utcnow()
    candidates = [
        k
        for k in keys
        if k.purpose == purpose and k.valid_at(now) and (k.custodial or not custodial)
    ]
    return max(candidates, key=lambda k: (k.not_before, k.created_at), default=None)


def open_custodial_key(node: NodeContext, key: ParticipantKey) -> bytes:
    """The private key of a custodial key. Raises InvalidState if the key is not custodial."""
    if key.private_key_sealed is None:
        raise InvalidState(f"key {key.kid} is not held by the node")
    return crypto.secretbox_decrypt(node.master_key, key.private_key_sealed)


__all__ = [
    "ALGORITHMS",
    "KNOWN_ADAPTERS",
    "GeneratedKey",
    "add_key",
    "current_key",
    "decode_public_key",
    "get_participant",
    "keys_by_participant",
    "keys_of",
    "list_participants",
    "open_custodial_key",
    "register_participant",
    "revoke_key",
    "rotate_key",
    "update_participant",
]
