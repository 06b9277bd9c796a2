"""Routing: accept a signed message, refuse a bad one, serve it to its sender and recipient.

The ingress path (``submit``) is the hot path: it verifies the sender's signature, asks the
policy engine, and writes the message, its audit leaf and its outbox row in the caller's one
transaction. Invariants:
- nothing is stored for a refused submission but the ``message:refused`` audit leaf, which
  holds the decision's rule ids and pack hash and no content;
- the same envelope submitted again returns the first answer and stores nothing new; the
  same id with other content is a conflict;
- the body is stored only encrypted, under a per-message key wrapped for the node (master
  key) and sealed to the sender's and recipient's X25519 keys;
- only the sender and the recipient see a message; content is served only with a
  justification, and each serving is an audit leaf.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from broker.consents.models import MessageTerms
from broker.core import crypto
from broker.core.context import Caller, NodeContext
from broker.core.db import HotStatement, UTCDateTime, utcnow
from broker.core.errors import (
    BadSignature,
    ClockWindow,
    ExpiredKey,
    Forbidden,
    InvalidState,
    KeyNotSenders,
    MalformedJSON,
    NotFound,
    PayloadTooLarge,
    PolicyDenied,
    ReplayConflict,
    RevokedKey,
    SchemaViolation,
    SenderMismatch,
    UnknownKey,
    UnknownRecipient,
)
from broker.core.ids import uuid7
from broker.core.text import justification as justified
from broker.delivery.models import OutboxEntry
from broker.envelopes import dsse
from broker.envelopes.schemas import PARTICIPANT_ID_PATTERN, DraftPayload, MessagePayload
from broker.messages.models import InboxEntry, Message, MessageStatus
from broker.messages.policy import PartyFacts, Terms, decide, default_terms, terms_for
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind, audit_row, record_event
from broker.participants.models import KeyPurpose, Participant, ParticipantKey
from broker.participants.service import current_key, keys_of, open_custodial_key
from broker.policy.service import NodePolicy

_P = Participant.__table__.c
_K = ParticipantKey.__table__.c
_M = Message.__table__.c
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Accepted:
    message_id: str
    status: str
    accepted_at: dt.datetime
    envelope: dict[str, Any]
    duplicate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "status": self.status,
            "accepted_at": self.accepted_at,
            "envelope": self.envelope,
        }


@dataclass(frozen=True, slots=True)
class Refused:
    message_id: str
    reasons: list[dict[str, str]]
    pack_hash: str
    obligations: list[dict[str, str]] = field(default_factory=list)

    def error(self) -> PolicyDenied:
        """The 403 problem: every failing rule with its citation, and what would lift it."""
        extra = {"obligations": self.obligations} if self.obligations else {}
        return PolicyDenied(
            "; ".join(f"{r['rule']}: {r['text']}" for r in self.reasons),
            reasons=self.reasons,
            policy_pack=self.pack_hash,
            message_id=self.message_id,
            **extra,
        )


def _schema_error(exc: ValidationError, prefix: str) -> SchemaViolation:
    errors = [
        {
            "field": ".".join(str(p) for p in (prefix, *err["loc"]) if p != ""),
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0]
    return SchemaViolation(f"{first['field']}: {first['message']}", errors=errors)


def parse_payload(raw: bytes) -> MessagePayload:
    """Raises MalformedJSON or SchemaViolation naming the field."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"payload is not valid JSON: {exc}") from exc
    return _validate_payload(data)


def _validate_payload(data: Any) -> MessagePayload:
    try:
        return MessagePayload.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc, "payload") from exc


def _check_key(row: Any, *, sender: str, now: dt.datetime, kid: str) -> None:
    if row.participant_id != sender:
        raise KeyNotSenders(f"key {kid} belongs to {row.participant_id}, not to {sender}")
    if row.purpose != KeyPurpose.SIGNING:
        raise KeyNotSenders(f"key {kid} is not a signing key")
    if row.revoked_at is not None and _aware(row.revoked_at) <= now:
        raise RevokedKey(f"key {kid} was revoked at {_aware(row.revoked_at).isoformat()}")
    if _aware(row.not_before) > now or (row.not_after is not None and _aware(row.not_after) <= now):
        raise ExpiredKey(f"key {kid} is not valid now")


def _aware(value: dt.datetime) -> dt.datetime:
    """In UTC: stored naive datetimes are UTC; psycopg answers in the session's time zone."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class _SigningKey:
    participant_id: str
    purpose: str
    public_key: bytes
    not_before: dt.datetime
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None


_FACTS = HotStatement(
    # 'k': the signing key a submission names; 'p': each party, once per encryption key.
    """
    SELECT 'k' AS part, participant_id AS id, purpose AS kind, NULL AS jurisdiction,
           NULL AS status, kid, public_key, not_before, not_after, revoked_at
    FROM participant_keys WHERE kid = :kid
    UNION ALL
    SELECT 'p', p.id, p.kind, p.jurisdiction, p.status,
           k.kid, k.public_key, k.not_before, k.not_after, k.revoked_at
    FROM participants p
    LEFT JOIN participant_keys k ON k.participant_id = p.id AND k.purpose = 'encryption'
    WHERE p.id IN (:sender, :recipient)
    """,
    columns={
        "not_before": UTCDateTime(),
        "not_after": UTCDateTime(),
        "revoked_at": UTCDateTime(),
    },
)


async def _facts(
    session: AsyncSession, *, kid: str | None, sender: str | None, recipient: str | None
) -> tuple[_SigningKey | None, dict[str, PartyFacts]]:
    """The signing key ``kid`` (when given) and both parties with their current encryption
    keys, in one statement: the only read of the ingress path."""
    now = utcnow()
    key: _SigningKey | None = None
    facts: dict[str, PartyFacts] = {}
    best: dict[str, tuple[str, bytes, dt.datetime]] = {}
    rows = await _FACTS.rows(session, {"kid": kid, "sender": sender, "recipient": recipient})
    for part, pid, kind, jurisdiction, status, k_id, public, not_before, na, revoked in rows:
        if part == "k":
            key = _SigningKey(
                pid,
                kind,
                bytes(public),
                _aware(not_before),
                na and _aware(na),
                revoked and _aware(revoked),
            )
            continue
        facts.setdefault(pid, PartyFacts(pid, kind, jurisdiction, status == "active"))
        if k_id is None:
            continue
        nb = _aware(not_before)
        valid = (
            (revoked is None or _aware(revoked) > now)
            and nb <= now
            and (na is None or _aware(na) > now)
        )
        if valid and (pid not in best or nb > best[pid][2]):
            best[pid] = (k_id, bytes(public), nb)
    for pid, (k_id, public, _) in best.items():
        facts[pid] = facts[pid].with_encryption_key(k_id, public)
    return key, facts


async def _signing_key(session: AsyncSession, kid: str) -> _SigningKey:
    key, _ = await _facts(session, kid=kid, sender=None, recipient=None)
    if key is None:
        raise UnknownKey(f"no registered key has id {kid}", field="signatures[0].keyid")
    return key


async def _party_facts(session: AsyncSession, ids: tuple[str, str]) -> dict[str, PartyFacts]:
    """Both parties and their current encryption keys, in one round trip."""
    return (await _facts(session, kid=None, sender=ids[0], recipient=ids[1]))[1]


_NOT_JSON = object()


def _peek(payload: bytes) -> tuple[Any, str | None]:
    """The unverified payload's JSON (``_NOT_JSON`` if it is none) and the recipient it
    names, only to read the recipient's facts in the same statement as the signing key.
    Nothing is decided on either before the signature verifies; the JSON is then validated
    without being decoded twice."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _NOT_JSON, None
    recipient = data.get("recipient") if isinstance(data, dict) else None
    if isinstance(recipient, str) and _PARTICIPANT_ID.fullmatch(recipient):
        return data, recipient
    return data, None  # not an id: the payload's validation will say so, in its turn


_PARTICIPANT_ID = re.compile(PARTICIPANT_ID_PATTERN)


async def _existing_answer(
    session: AsyncSession, node: NodeContext, message_id: str, digest: str
) -> Accepted | None:
    row = (
        await session.execute(
            select(
                _M.envelope_sha256, _M.status, _M.accepted_at, _M.ciphertext, _M.key_for_node
            ).where(_M.id == message_id)
        )
    ).first()
    if row is None:
        return None
    if not crypto.constant_time_equal(row.envelope_sha256.encode(), digest.encode()):
        raise ReplayConflict(
            f"message id {message_id} was already used for a different envelope", field="payload.id"
        )
    key = crypto.secretbox_decrypt(node.master_key, row.key_for_node)
    envelope = orjson.loads(crypto.secretbox_decrypt(key, row.ciphertext))
    return Accepted(message_id, row.status, _aware(row.accepted_at), envelope, duplicate=True)


_PG_STORE = HotStatement(
    # The message, its outbox row and its audit leaf in one statement (one round trip); the
    # last two only when the message row was stored, so a taken id stores nothing.
    """
    WITH m AS (
        INSERT INTO messages (
            id, type, sender_id, recipient_id, case_id, in_reply_to, created_at, accepted_at,
            status, submitted_by, legal_basis, purpose, handling_code, payload_size,
            envelope_sha256, sender_kid, policy_hash, policy_rules, ciphertext, key_for_node,
            key_for_sender, key_for_recipient, sender_enc_kid, recipient_enc_kid
        ) VALUES (
            :id, :type, :sender_id, :recipient_id, :case_id, :in_reply_to, :created_at,
            :accepted_at, :status, :submitted_by, :legal_basis, :purpose, :handling_code,
            :payload_size, :envelope_sha256, :sender_kid, :policy_hash,
            CAST(:policy_rules AS json), :ciphertext, :key_for_node, :key_for_sender,
            :key_for_recipient, :sender_enc_kid, :recipient_enc_kid
        )
        ON CONFLICT (id) DO NOTHING RETURNING id
    ), o AS (
        INSERT INTO outbox (message_id, recipient_id, created_at)
        SELECT id, :recipient_id, :accepted_at FROM m
    ), a AS (
        INSERT INTO audit_events (event_id, kind, message_id, participant_id, created_at, leaf)
        SELECT :event_id, :kind, id, :participant_id, :event_created_at, :leaf FROM m
    )
    SELECT id FROM m
    """
)
_SQLITE_INSERT_MESSAGE = sqlite_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["id"])
_SQLITE_CHANGES = text("SELECT changes()")


async def _store(
    session: AsyncSession, row: dict[str, Any], outbox: dict[str, Any], audit: dict[str, Any]
) -> bool:
    """Insert the message, and its outbox row and audit leaf, unless its id is taken.
    True when this call stored them."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        values = {
            **row,
            "policy_rules": orjson.dumps(row["policy_rules"]).decode(),
            "event_id": audit["event_id"],
            "kind": audit["kind"],
            "participant_id": audit["participant_id"],
            "event_created_at": audit["created_at"],
            "leaf": audit["leaf"],
        }
        return bool(await _PG_STORE.rows(session, values))
    await connection.execute(_SQLITE_INSERT_MESSAGE, row)
    if not (await connection.execute(_SQLITE_CHANGES)).scalar_one():
        return False
    await connection.execute(insert(OutboxEntry), [outbox])
    await connection.execute(insert(AuditEvent), [audit])
    return True


def load_body(node: NodeContext, body: bytes) -> Any:
    """The parsed JSON of a submission. Raises PayloadTooLarge, MalformedJSON."""
    if len(body) > node.max_payload_bytes * 4 // 3 + 65_536:
        raise PayloadTooLarge(f"request body over the limit of {node.max_payload_bytes} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc


async def submit(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    body: bytes,
    policy: NodePolicy | None = None,
) -> Accepted | Refused:
    """Accept a self-signed envelope, or a draft (``{"draft": {...}}``) that the node signs with
    the caller's participant's custodial key, deciding it against ``policy`` (the shipped
    packs when None). Flushes; the caller commits.

    Raises PayloadTooLarge, MalformedJSON, SchemaViolation, BadBase64, BadSignature,
    UnknownKey, RevokedKey, ExpiredKey, KeyNotSenders, SenderMismatch, UnknownRecipient,
    ClockWindow, ReplayConflict. A policy denial is returned as ``Refused`` (its audit leaf is
    flushed) so the caller can commit the leaf before answering 403.
    """
    data = load_body(node, body)
    now = utcnow()
    parties: dict[str, PartyFacts] | None = None
    if isinstance(data, dict) and "draft" in data:
        envelope, payload, kid_used = await verified_submission(
            session, node=node, caller=caller, data=data, now=now
        )
    else:
        # The hot path: the signing key and both parties in one read.
        envelope = _checked_envelope(node, data)
        kid_used = envelope.signatures[0].keyid
        decoded, hint = _peek(envelope.payload)
        key, parties = await _facts(
            session, kid=kid_used, sender=caller.participant_id, recipient=hint
        )
        # A payload that validates names a participant id as recipient, so it is the hint.
        payload = _verified_payload(envelope, key, now=now, decoded=decoded)
    if payload.forwarded_from is not None:
        raise SchemaViolation(
            f"a forward goes to POST /v1/messages/{payload.forwarded_from}/forward, which "
            "decides it against the terms of the original",
            field="payload.forwarded_from",
        )
    return await accept(
        session,
        node=node,
        caller=caller,
        envelope=envelope,
        payload=payload,
        kid_used=kid_used,
        now=now,
        policy=policy,
        parties=parties,
    )


async def accept(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    envelope: dsse.UnsafeEnvelope,
    payload: MessagePayload,
    kid_used: str,
    now: dt.datetime,
    policy: NodePolicy | None = None,
    held: Terms | None = None,
    known: Mapping[str, Any] | None = None,
    audit_kind: AuditKind | None = None,
    audit_fields: Mapping[str, Any] | None = None,
    parties: Mapping[str, PartyFacts] | None = None,
) -> Accepted | Refused:
    """Decide and store a message whose sender signature ``verified_submission`` checked: the
    one path by which anything is accepted (submissions, forwards, consent messages).

    ``held`` is the terms of the material a forward forwards; ``known`` sets context fields
    the payload does not give (see ``broker.messages.policy.decide``). ``audit_kind`` and
    ``audit_fields`` let a caller that records an event carried by the message (a case
    transition) make the one leaf of the acceptance that event's leaf; ``audit_fields`` are
    added to the refusal leaf too. Raises SenderMismatch,
    ReplayConflict, ClockWindow, SchemaViolation, UnknownRecipient; returns ``Refused`` on a
    policy denial (its audit leaf flushed).
    """
    if payload.sender != caller.participant_id:
        raise SenderMismatch(
            f"the sender {payload.sender} is not your participant {caller.participant_id}",
            field="payload.sender",
        )
    message_id = str(payload.id)
    # The first answer to an envelope seen before is looked up only where this submission
    # would otherwise fail (clock, recipient, policy) or its insert conflicts, so the common
    # path spends no round trip on it.
    skew = dt.timedelta(seconds=node.clock_skew_seconds)
    if abs(payload.created_utc() - now) > skew:
        if existing := await _existing_answer(session, node, message_id, envelope.digest):
            return existing
        raise ClockWindow(
            f"created_at {payload.created_at.isoformat()} is more than "
            f"{node.clock_skew_seconds} s from the node's clock {now.isoformat()}",
            field="payload.created_at",
        )
    if payload.expires_at is not None and payload.expires_at <= now:
        raise SchemaViolation("expires_at is in the past", field="payload.expires_at")
    if parties is None:
        parties = await _party_facts(session, (payload.sender, payload.recipient))
    if payload.recipient not in parties:
        if existing := await _existing_answer(session, node, message_id, envelope.digest):
            return existing
        raise UnknownRecipient(
            f"no participant {payload.recipient} is registered", field="payload.recipient"
        )
    decision = decide(
        payload, parties[payload.sender], parties[payload.recipient], policy=policy, **(known or {})
    )
    base_fields: dict[str, Any] = {
        "message_type": payload.type,
        "sender": payload.sender,
        "recipient": payload.recipient,
        "legal_basis": payload.legal_basis,
        "purpose": payload.purpose,
        "case_id": str(payload.case_id) if payload.case_id else None,
        "forwarded_from": str(payload.forwarded_from) if payload.forwarded_from else None,
        "envelope_sha256": envelope.digest,
        "policy_pack": decision.pack_hash,
        "policy_rules": [r.rule_id for r in decision.reasons],
    }
    if not decision.permitted:
        if existing := await _existing_answer(session, node, message_id, envelope.digest):
            return existing
        await record_event(
            session,
            kind=AuditKind.MESSAGE_REFUSED,
            node=node.node_id,
            actor=caller.actor(),
            participant_id=payload.sender,
            message_id=message_id,
            **base_fields,
            **(audit_fields or {}),
        )
        return Refused(
            message_id,
            [{"rule": r.rule_id, "text": r.text, "citation": r.citation} for r in decision.reasons],
            decision.pack_hash,
            [{"kind": o.kind, "value": o.value, "rule": o.rule_id} for o in decision.obligations],
        )
    countersigned = dsse.add_signature(envelope, node.signer)
    envelope_dict = countersigned.to_dict()
    message_key = crypto.random_key()
    sender_facts, recipient_facts = parties[payload.sender], parties[payload.recipient]
    row = {
        "id": message_id,
        "type": payload.type,
        "sender_id": payload.sender,
        "recipient_id": payload.recipient,
        "case_id": str(payload.case_id) if payload.case_id else None,
        "in_reply_to": str(payload.in_reply_to) if payload.in_reply_to else None,
        "created_at": payload.created_utc(),
        "accepted_at": now,
        "status": MessageStatus.ACCEPTED.value,
        "submitted_by": caller.account_id,
        "legal_basis": payload.legal_basis,
        "purpose": payload.purpose,
        "handling_code": payload.handling.code if payload.handling else None,
        "payload_size": len(envelope.payload),
        "envelope_sha256": envelope.digest,
        "sender_kid": kid_used,
        "policy_hash": decision.pack_hash,
        "policy_rules": [r.rule_id for r in decision.reasons],
        "ciphertext": crypto.secretbox_encrypt(message_key, orjson.dumps(envelope_dict)),
        "key_for_node": crypto.secretbox_encrypt(node.master_key, message_key),
        "key_for_sender": _seal(sender_facts.encryption_key, message_key),
        "key_for_recipient": _seal(recipient_facts.encryption_key, message_key),
        "sender_enc_kid": sender_facts.encryption_kid,
        "recipient_enc_kid": recipient_facts.encryption_kid,
    }
    outbox = {"message_id": message_id, "recipient_id": payload.recipient, "created_at": now}
    audit = audit_row(
        kind=audit_kind or AuditKind.MESSAGE_ACCEPTED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=payload.sender,
        message_id=message_id,
        at=now,
        payload_size=len(envelope.payload),
        handling=row["handling_code"],
        **base_fields,
        **(audit_fields or {}),
    )
    if not await _store(session, row, outbox, audit):
        # This id is taken: the same envelope again (answer as the first time), a concurrent
        # submission of it that committed first, or other content (a replay conflict).
        existing = await _existing_answer(session, node, message_id, envelope.digest)
        if existing is None:  # pragma: no cover - the conflicting row was there a moment ago
            raise ReplayConflict(f"message id {message_id} is taken", field="payload.id")
        return existing
    terms = terms_for(payload, decision, held)
    if terms != default_terms(
        message_id=message_id,
        sender=payload.sender,
        recipient=payload.recipient,
        purpose=payload.purpose,
        handling_code=payload.handling.code if payload.handling else None,
    ):
        await session.execute(insert(MessageTerms), [terms_row(message_id, terms)])
    return Accepted(message_id, MessageStatus.ACCEPTED.value, now, envelope_dict)


async def verified_submission(
    session: AsyncSession, *, node: NodeContext, caller: Caller, data: Any, now: dt.datetime
) -> tuple[dsse.UnsafeEnvelope, MessagePayload, str]:
    """The envelope, its parsed payload and the signing key id, once the sender's signature
    verified under a key of the sender's that is valid now (or the node signed a draft)."""
    if isinstance(data, dict) and "draft" in data:
        envelope, payload = await _sign_draft(session, node=node, caller=caller, data=data, now=now)
        return envelope, payload, envelope.signatures[0].keyid
    envelope = _checked_envelope(node, data)
    kid = envelope.signatures[0].keyid
    payload = _verified_payload(envelope, await _signing_key(session, kid), now=now)
    return envelope, payload, kid


async def sign_and_accept(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    draft: Mapping[str, Any],
    policy: NodePolicy | None,
    known: Mapping[str, Any] | None = None,
    audit_kind: AuditKind | None = None,
    audit_fields: Mapping[str, Any] | None = None,
) -> Accepted | Refused:
    """Sign ``draft`` with the caller's participant's custodial key and ``accept`` it: how a
    domain sends a message of its own (a consent request or answer, a match query or answer,
    a case event). Flushes; the caller commits.

    Raises the draft errors of ``submit`` (Forbidden: no custodial key; SchemaViolation,
    PayloadTooLarge) and those of ``accept``; returns ``Refused`` on a policy denial.
    """
    now = utcnow()
    envelope, payload, kid_used = await verified_submission(
        session, node=node, caller=caller, data={"draft": dict(draft)}, now=now
    )
    return await accept(
        session,
        node=node,
        caller=caller,
        envelope=envelope,
        payload=payload,
        kid_used=kid_used,
        now=now,
        policy=policy,
        known=known,
        audit_kind=audit_kind,
        audit_fields=audit_fields,
    )


def _checked_envelope(node: NodeContext, data: Any) -> dsse.UnsafeEnvelope:
    envelope = dsse.parse_envelope(data)
    if envelope.payload_type != dsse.PAYLOAD_TYPE:
        raise SchemaViolation(f"payloadType must be {dsse.PAYLOAD_TYPE}", field="payloadType")
    if len(envelope.signatures) != 1:
        raise SchemaViolation("submit exactly one signature, the sender's", field="signatures")
    if len(envelope.payload) > node.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload of {len(envelope.payload)} bytes is over the limit of "
            f"{node.max_payload_bytes}"
        )
    return envelope


def _verified_payload(
    envelope: dsse.UnsafeEnvelope,
    key: _SigningKey | None,
    *,
    now: dt.datetime,
    decoded: Any = _NOT_JSON,
) -> MessagePayload:
    """The payload, once the envelope's one signature verified under ``key``, a signing key
    of the payload's sender valid now. ``decoded`` is the payload's JSON if ``_peek``
    decoded it already."""
    kid = envelope.signatures[0].keyid
    if key is None:
        raise UnknownKey(f"no registered key has id {kid}", field="signatures[0].keyid")
    dsse.verify_signature(envelope, 0, key.public_key)
    if decoded is _NOT_JSON:
        payload = parse_payload(envelope.payload)
    else:
        payload = _validate_payload(decoded)
    _check_key(key, sender=payload.sender, now=now, kid=kid)
    return payload


def _seal(public_key: bytes | None, message_key: bytes) -> bytes | None:
    return crypto.seal(public_key, message_key) if public_key is not None else None


async def _sign_draft(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    data: dict[str, Any],
    now: dt.datetime,
) -> tuple[dsse.UnsafeEnvelope, MessagePayload]:
    if set(data) != {"draft"}:
        raise SchemaViolation('a draft submission is {"draft": {...}} and nothing else', field="$")
    try:
        draft = DraftPayload.model_validate(data["draft"])
    except ValidationError as exc:
        raise _schema_error(exc, "draft") from exc
    key = current_key(
        await keys_of(session, caller.participant_id), KeyPurpose.SIGNING, custodial=True
    )
    if key is None:
        raise Forbidden(
            f"{caller.participant_id} has no custodial signing key: sign the envelope yourself"
        )
    payload = MessagePayload.model_validate(
        {
            **draft.model_dump(mode="json", exclude_none=True),
            "id": str(uuid7()),
            "sender": caller.participant_id,
            "created_at": now.isoformat(),
        }
    )
    raw = orjson.dumps(payload.model_dump(mode="json", exclude_none=True))
    if len(raw) > node.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload of {len(raw)} bytes is over the limit of {node.max_payload_bytes}"
        )
    signer = crypto.Signer(open_custodial_key(node, key))
    return dsse.sign_envelope(raw, signer), payload


def terms_row(message_id: str, terms: Terms) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "root_message_id": terms.root_message_id,
        "forwarded_from": terms.forwarded_from,
        "provider_id": terms.provider_id,
        "original_purpose": terms.original_purpose,
        "permitted_recipients": sorted(terms.permitted_recipients),
        "permitted_purposes": sorted(terms.permitted_purposes),
        "handling_code": terms.handling_code,
        "handling_restriction": terms.handling_restriction,
        "restrictions": list(terms.restrictions),
    }


async def terms_of(session: AsyncSession, message: Message) -> Terms:
    """The terms of onward use of an accepted message: its stored row, else the defaults its
    ``messages`` row implies."""
    row = await session.get(MessageTerms, message.id)
    if row is None:
        return default_terms(
            message_id=message.id,
            sender=message.sender_id,
            recipient=message.recipient_id,
            purpose=message.purpose,
            handling_code=message.handling_code,
        )
    return Terms(
        root_message_id=row.root_message_id,
        provider_id=row.provider_id,
        original_purpose=row.original_purpose,
        permitted_recipients=frozenset(row.permitted_recipients),
        permitted_purposes=frozenset(row.permitted_purposes),
        handling_code=row.handling_code,
        handling_restriction=row.handling_restriction,
        restrictions=tuple(row.restrictions),
        forwarded_from=row.forwarded_from,
    )


# --- reading -----------------------------------------------------------------------------


async def get_message_for(session: AsyncSession, *, caller: Caller, message_id: str) -> Message:
    """The message, if the caller's participant sent or received it. Raises NotFound (also
    for messages of others: existence is not disclosed)."""
    try:
        uuid.UUID(message_id)
    except ValueError as exc:
        raise NotFound(f"no message {message_id}") from exc
    message = await session.get(Message, message_id)
    if message is None or caller.participant_id not in (message.sender_id, message.recipient_id):
        raise NotFound(f"no message {message_id}")
    return message


async def held_message(
    session: AsyncSession,
    *,
    caller: Caller,
    message_id: str,
    forbidden: str = (
        "only the recipient of a message uses it onward; as its sender, send your "
        "material as a new message"
    ),
) -> Message:
    """The delivered message ``message_id`` if the caller's participant received it: what
    the caller holds, and may use onward (forward, ask consent for).

    Raises NotFound (not the caller's), Forbidden with ``forbidden`` (the caller sent it),
    InvalidState (not yet delivered).
    """
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if message.recipient_id != caller.participant_id:
        raise Forbidden(forbidden)
    if message.status == MessageStatus.ACCEPTED:
        raise InvalidState("the message is not yet delivered to your inbox")
    return message


def open_envelope(node: NodeContext, message: Message) -> dict[str, Any]:
    key = crypto.secretbox_decrypt(node.master_key, message.key_for_node)
    envelope: dict[str, Any] = orjson.loads(crypto.secretbox_decrypt(key, message.ciphertext))
    return envelope


async def read_content(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    message_id: str,
    justification: str | None,
    min_justification: int,
) -> tuple[Message, dict[str, Any], dict[str, Any]]:
    """The countersigned envelope and its decoded payload; writes a ``content:consulted`` leaf.
    Raises NotFound, JustificationRequired."""
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if caller.participant_id == message.recipient_id and message.status == MessageStatus.ACCEPTED:
        raise InvalidState("the message is not yet delivered to your inbox")
    text = justified(justification, minimum=min_justification, what="content")
    envelope = open_envelope(node, message)
    payload = orjson.loads(base64.b64decode(envelope["payload"]))
    await record_event(
        session,
        kind=AuditKind.CONTENT_CONSULTED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        message_id=message.id,
        justification=text,
        envelope_sha256=message.envelope_sha256,
        role="recipient" if caller.participant_id == message.recipient_id else "sender",
    )
    return message, envelope, payload


async def list_inbox(
    session: AsyncSession, *, caller: Caller, after: int, limit: int
) -> list[tuple[int, Message]]:
    stmt = (
        select(InboxEntry.seq, Message)
        .join(Message, Message.id == InboxEntry.message_id)
        .where(InboxEntry.recipient_id == caller.participant_id, InboxEntry.seq > after)
        .order_by(InboxEntry.seq)
        .limit(limit)
    )
    return [(seq, msg) for seq, msg in (await session.execute(stmt)).all()]


async def list_sent(
    session: AsyncSession, *, caller: Caller, limit: int, before: str | None
) -> list[Message]:
    stmt = select(Message).where(Message.sender_id == caller.participant_id)
    if before:
        stmt = stmt.where(Message.id < before)
    stmt = stmt.order_by(Message.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


# --- receipts ----------------------------------------------------------------------------


RECEIPT_TYPE = "receipt"


async def record_receipt(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    message_id: str,
    body: bytes,
) -> Message:
    """Record the recipient's signed receipt: a ``receipt`` envelope by the recipient, with
    ``in_reply_to`` the message and ``body.envelope_sha256`` its digest; or, with an empty
    body, one the node signs with the recipient's custodial key. Idempotent.

    Raises NotFound, Forbidden (not the recipient), InvalidState (not yet delivered),
    and the envelope errors of ``submit``."""
    message = await get_message_for(session, caller=caller, message_id=message_id)
    if message.recipient_id != caller.participant_id:
        raise Forbidden("only the recipient receipts a message")
    if message.receipt is not None:
        return message
    if message.status == MessageStatus.ACCEPTED:
        raise InvalidState("the message is not yet delivered to your inbox")
    now = utcnow()
    stripped = body.strip()
    if stripped in (b"", b"{}"):
        key = current_key(
            await keys_of(session, caller.participant_id), KeyPurpose.SIGNING, custodial=True
        )
        if key is None:
            raise Forbidden(f"{caller.participant_id} has no custodial key: sign the receipt")
        payload = receipt_payload(
            message_id=message.id,
            sender=caller.participant_id,
            recipient=message.sender_id,
            envelope_sha256=message.envelope_sha256,
            created_at=now,
        )
        envelope = dsse.sign_envelope(payload, crypto.Signer(open_custodial_key(node, key)))
    else:
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise MalformedJSON(f"receipt is not valid JSON: {exc}") from exc
        envelope = dsse.parse_envelope(data)
        if len(envelope.signatures) != 1:
            raise SchemaViolation("a receipt carries one signature", field="signatures")
        kid = envelope.signatures[0].keyid
        key_row = await _signing_key(session, kid)
        dsse.verify_signature(envelope, 0, bytes(key_row.public_key))
        parsed = parse_payload(envelope.payload)
        _check_key(key_row, sender=caller.participant_id, now=now, kid=kid)
        _check_receipt(parsed, message)
    message.receipt = envelope.to_json().decode()
    message.receipted_at = now
    message.status = MessageStatus.RECEIPTED.value
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.MESSAGE_RECEIPTED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        message_id=message.id,
        receipt_sha256=envelope.digest,
        envelope_sha256=message.envelope_sha256,
    )
    return message


def _check_receipt(payload: MessagePayload, message: Message) -> None:
    problems = []
    if payload.type != RECEIPT_TYPE:
        problems.append(("payload.type", f"must be {RECEIPT_TYPE!r}"))
    if payload.sender != message.recipient_id:
        problems.append(("payload.sender", "must be the message's recipient"))
    if payload.recipient != message.sender_id:
        problems.append(("payload.recipient", "must be the message's sender"))
    if str(payload.in_reply_to) != message.id:
        problems.append(("payload.in_reply_to", "must be the message id"))
    if payload.body.get("envelope_sha256") != message.envelope_sha256:
        problems.append(("payload.body.envelope_sha256", "must be the message's envelope digest"))
    if problems:
        field, why = problems[0]
        raise BadSignature(f"the receipt does not match the message: {field} {why}", field=field)


def receipt_payload(
    *, message_id: str, sender: str, recipient: str, envelope_sha256: str, created_at: dt.datetime
) -> bytes:
    return orjson.dumps(
        {
            "id": str(uuid7()),
            "type": RECEIPT_TYPE,
            "sender": sender,
            "recipient": recipient,
            "in_reply_to": message_id,
            "created_at": created_at.isoformat(),
            "body": {"envelope_sha256": envelope_sha256},
        }
    )


def digest_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "Accepted",
    "Refused",
    "accept",
    "get_message_for",
    "held_message",
    "list_inbox",
    "list_sent",
    "load_body",
    "read_content",
    "record_receipt",
    "sign_and_accept",
    "submit",
    "terms_of",
    "verified_submission",
]
