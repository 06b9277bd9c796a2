"""Ingress: accept a signed message, or refuse it.

The ingress path (``submit``) is the hot path: it verifies the sender's signature, asks the
policy engine, and writes the message, its audit leaf and its outbox row in the caller's one
transaction. ``accept`` is the one path by which anything is accepted (submissions, forwards,
consent and matching messages, case events); ``sign_and_accept`` is how a domain sends a
message of its own. Invariants:
- nothing is stored for a refused submission but the ``message:refused`` audit leaf, which
  holds the decision's rule ids and pack hash and no content;
- the same envelope submitted again returns the first answer and stores nothing new; the
  same id with other content is a conflict;
- the body is stored only encrypted, under a per-message key wrapped for the node (master
  key) and sealed to the sender's and recipient's X25519 keys;
- a permitted message whose decision carries a ``require_approval`` obligation is held
  (status ``pending_approval``, a ``message:held`` leaf, no outbox row) until a supervisor
  approves it (``broker.messages.approvals``), unless the caller's workflow carries the
  approval out itself (``AcceptRequest.approved_by_workflow``: a case event);
- the decision's ``follow_up`` obligations open tracked items (``broker.messages.followups``)
  when the message is released: at acceptance, or at the approval of a held one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import crypto, metrics
from broker.core.context import CallContext, NodeContext
from broker.core.db import HotStatement
from broker.core.errors import (
    CaseEventOutsideCase,
    ClockWindow,
    ContentErased,
    MalformedJSON,
    PayloadTooLarge,
    PolicyDenied,
    ReplayConflict,
    SchemaViolation,
    SenderMismatch,
    UnknownRecipient,
)
from broker.core.jsonlimits import JsonShapeError, check_json
from broker.envelopes import dsse
from broker.messages import approvals
from broker.messages.followups import open_follow_ups
from broker.messages.keys import SigningKey, as_utc, ingress_facts, party_facts
from broker.messages.models import (
    Message,
    MessageStatus,
    MessageTerms,
    OutboxEntry,
    OutboxPriority,
)
from broker.messages.policy import (
    PartyFacts,
    Terms,
    decide,
    default_terms,
    refusal_reasons,
    terms_for,
)
from broker.messages.retention import retention_deadline
from broker.messages.signing import (
    Signed,
    checked_envelope,
    peek,
    verified_payload,
    verified_submission,
)
from broker.oversight.models import AuditEvent, AuditText
from broker.oversight.service import (
    AuditKind,
    audit_row,
    commit_texts,
    kept_text_rows,
    record_event,
)
from broker.policy.service import NodePolicy
from policies.model import Decision, Obligation

_M = Message.__table__.c
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]


CASE_ONLY_TYPES = frozenset(
    {
        "mla.event",
        "fiu.event",
        "fiu.consent",
        "fiu.request",
        "fiu.response",
        "extradition.request",
        "extradition.event",
        "jit.event",
        "jit.message",
        "intel.request",
        "intel.response",
        "intel.event",
        "notice",
    }
)
"""Message types only the case and consent services send: every type a workflow table's
events travel in, but ``fiu.disclosure``, which an FIU also sends on its own (goAML, the
compose form; ``tests/unit/broker/test_case_door_types.py`` holds the two lists together),
and the ``notice`` only the node issues (``broker.messages.issuing``). A plain submission of
one, or of any message naming a ``case_id``, is refused, so no participant can put an event
into a case it is not a party of (issue 14 item 5; UNTOC art. 18(13)). Peer nodes' case events
arrive by federation (``submit(..., from_peer=True)``), whose path checks the parties of a
case held here (``broker.delivery.federation``)."""


AnyContext = CallContext[NodePolicy | None, object]
"""The context ingress needs: any domain's call context (its configuration is not read)."""


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
    reasons: list[dict[str, Any]]
    pack_hash: str
    obligations: list[dict[str, str]] = field(default_factory=list)

    def error(self) -> PolicyDenied:
        """The 403 problem: every failing rule with its citation, what the reference data it
        compared with holds (the languages the requested State accepts), and what would lift
        it."""
        extra = {"obligations": self.obligations} if self.obligations else {}
        return PolicyDenied(
            "; ".join(f"{r['rule']}: {r['text']}{_reference_text(r)}" for r in self.reasons),
            reasons=self.reasons,
            policy_pack=self.pack_hash,
            message_id=self.message_id,
            **extra,
        )


def _reference_text(reason: Mapping[str, Any]) -> str:
    compared: Mapping[str, list[str]] = reason.get("reference", {})
    return "".join(
        f" ({name}: {', '.join(values) or 'none configured'})" for name, values in compared.items()
    )


@dataclass(frozen=True, slots=True)
class AcceptRequest:
    """What a caller of ``accept`` knows beyond the signed submission.

    - ``held``: the terms of the material a forward forwards;
    - ``known``: context fields the payload does not give (see
      ``broker.messages.policy.decide``);
    - ``audit_kind``, ``audit_fields``: a caller that records an event carried by the message
      (a case transition, a match query) makes the one leaf of the acceptance that event's
      leaf; ``audit_fields`` are added to the refusal leaf too;
    - ``parties``: both parties' facts, when the caller read them already (``submit`` reads
      them with the signing key, in one statement);
    - ``approved_by_workflow``: the caller's workflow carries out a ``require_approval``
      obligation itself (a case event, under the four-eyes guard of P1), so the message is
      not held for a supervisor;
    - ``follow_up_case_id``: the case a ``follow_up`` obligation belongs to when the message
      names none (a forward of material received in a case: P5.late);
    - ``carried_out_elsewhere``: the sender's own node carried out the approval and the
      follow-ups (an envelope a peer node forwards): neither is repeated here, where no
      supervisor or handler of the sender could act on them;
    - ``holdable``: False for a message whose caller records state its recipient acts on at
      once (a consent request, an FIU match query or answer): one that requires approval is
      then refused rather than held, since its record would show what has not left.
    """

    held: Terms | None = None
    known: Mapping[str, Any] = field(default_factory=dict)
    audit_kind: AuditKind | None = None
    audit_fields: Mapping[str, Any] = field(default_factory=dict)
    parties: Mapping[str, PartyFacts] | None = None
    approved_by_workflow: bool = False
    follow_up_case_id: str | None = None
    carried_out_elsewhere: bool = False
    holdable: bool = True


async def _existing_answer(
    session: AsyncSession, node: NodeContext, message_id: str, digest: str
) -> Accepted | None:
    row = (
        await session.execute(
            select(
                _M.envelope_sha256,
                _M.status,
                _M.accepted_at,
                _M.ciphertext,
                _M.key_for_node,
                _M.erased_at,
            ).where(_M.id == message_id)
        )
    ).first()
    if row is None:
        return None
    if not crypto.constant_time_equal(row.envelope_sha256.encode(), digest.encode()):
        raise ReplayConflict(
            f"message id {message_id} was already used for a different envelope", field="payload.id"
        )
    if row.key_for_node is None or row.ciphertext is None:
        raise ContentErased(
            f"the content of message {message_id}",
            as_utc(row.erased_at) if row.erased_at else None,
            message_id=message_id,
        )
    key = crypto.secretbox_decrypt(node.master_key, row.key_for_node)
    envelope = orjson.loads(crypto.secretbox_decrypt(key, row.ciphertext))
    return Accepted(message_id, row.status, as_utc(row.accepted_at), envelope, duplicate=True)


_PG_STORE = HotStatement(
    # The message, its outbox row and its audit leaf in one statement (one round trip); the
    # last two only when the message row was stored, so a taken id stores nothing.
    """
    WITH m AS (
        INSERT INTO messages (
            id, type, sender_id, recipient_id, case_id, in_reply_to, created_at, accepted_at,
            status, submitted_by, legal_basis, purpose, handling_code, urgent, payload_size,
            envelope_sha256, sender_kid, policy_hash, policy_rules, ciphertext, key_for_node,
            key_for_sender, key_for_recipient, sender_enc_kid, recipient_enc_kid,
            retention_until
        ) VALUES (
            :id, :type, :sender_id, :recipient_id, :case_id, :in_reply_to, :created_at,
            :accepted_at, :status, :submitted_by, :legal_basis, :purpose, :handling_code,
            :urgent, :payload_size, :envelope_sha256, :sender_kid, :policy_hash,
            CAST(:policy_rules AS json), :ciphertext, :key_for_node, :key_for_sender,
            :key_for_recipient, :sender_enc_kid, :recipient_enc_kid, :retention_until
        )
        ON CONFLICT (id) DO NOTHING RETURNING id
    ), o AS (
        INSERT INTO outbox (message_id, recipient_id, created_at, priority)
        SELECT id, :recipient_id, :accepted_at, :priority FROM m
    ), a AS (
        INSERT INTO audit_events (event_id, kind, message_id, participant_id, created_at, leaf)
        SELECT :event_id, :kind, id, :participant_id, :event_created_at, :leaf FROM m
    ), t AS (
        INSERT INTO audit_texts (event_id, field, text, salt, message_id, case_id)
        SELECT :event_id, x.field, x.text, x.salt, m.id, :case_id
        FROM m, unnest(
            CAST(:text_fields AS varchar[]), CAST(:texts AS text[]), CAST(:text_salts AS bytea[])
        ) AS x(field, text, salt)
    )
    SELECT id FROM m
    """
)


_SQLITE_INSERT_MESSAGE = sqlite_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["id"])
_SQLITE_CHANGES = text("SELECT changes()")


async def store_accepted(
    session: AsyncSession,
    row: dict[str, Any],
    outbox: dict[str, Any] | None,
    audit: dict[str, Any],
    texts: Sequence[dict[str, Any]] = (),
) -> bool:
    """Insert the message, and its outbox row (none for a message held for approval), audit
    leaf and the texts the leaf commits to (``audit_texts`` rows), unless its id is taken.
    True when this call stored them. On PostgreSQL a message with an outbox row is one
    statement."""
    connection = await session.connection()
    postgres = connection.dialect.name == "postgresql"
    if postgres and outbox is not None:
        values = {
            **row,
            "policy_rules": orjson.dumps(row["policy_rules"]).decode(),
            "event_id": audit["event_id"],
            "kind": audit["kind"],
            "participant_id": audit["participant_id"],
            "event_created_at": audit["created_at"],
            "leaf": audit["leaf"],
            "priority": outbox["priority"],
            "text_fields": [t["field"] for t in texts],
            "texts": [t["text"] for t in texts],
            "text_salts": [t["salt"] for t in texts],
        }
        return bool(await _PG_STORE.rows(session, values))
    if postgres:
        statement = pg_insert(_MESSAGES).on_conflict_do_nothing(index_elements=["id"])
        if not (await connection.execute(statement.returning(_M.id), row)).first():
            return False
    else:
        await connection.execute(_SQLITE_INSERT_MESSAGE, row)
        if not (await connection.execute(_SQLITE_CHANGES)).scalar_one():
            return False
    if outbox is not None:
        await connection.execute(insert(OutboxEntry), [outbox])
    await connection.execute(insert(AuditEvent), [audit])
    if texts:
        await connection.execute(insert(AuditText), list(texts))
    return True


def load_body(node: NodeContext, body: bytes) -> Any:
    """The parsed JSON of a submission. Raises PayloadTooLarge, MalformedJSON, and
    SchemaViolation (over the JSON depth or element limits)."""
    if len(body) > node.max_payload_bytes * 4 // 3 + 65_536:
        raise PayloadTooLarge(f"request body over the limit of {node.max_payload_bytes} bytes")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc
    try:
        return check_json(data, what="the request body")
    except JsonShapeError as exc:
        raise SchemaViolation(str(exc), field="$") from exc


# What ``ingress_facts`` read for (key id, sender, recipient), kept by a caller that submits
# many envelopes in one transaction (a federation batch), where they cannot change.
FactsMemo = dict[
    tuple[str, str | None, str | None], tuple[SigningKey | None, dict[str, PartyFacts]]
]


async def submit(
    session: AsyncSession,
    *,
    ctx: AnyContext,
    body: bytes,
    from_peer: bool = False,
    facts_memo: FactsMemo | None = None,
) -> Accepted | Refused:
    """Accept a self-signed envelope, or a draft (``{"draft": {...}}``) that the node signs with
    the caller's participant's custodial key, deciding it against ``ctx.policy`` (the shipped
    packs when None) at ``ctx.now``. Flushes; the caller commits.

    A case event (``CASE_ONLY_TYPES``, or any ``case_id``) is refused unless ``from_peer``:
    the federation path, which forwards what a peer node's case service accepted and checks
    the parties of a case held here itself.

    Raises CaseEventOutsideCase, PayloadTooLarge, MalformedJSON, SchemaViolation, BadBase64,
    BadSignature,
    UnknownKey, RevokedKey, ExpiredKey, KeyNotSenders, SenderMismatch, UnknownRecipient,
    ClockWindow, ReplayConflict. A policy denial is returned as ``Refused`` (its audit leaf is
    flushed) so the caller can commit the leaf before answering 403. ``facts_memo``, given by
    a caller submitting many envelopes in one transaction, spares the read of the key and the
    parties for each envelope after the first of the same key, sender and recipient.
    flushed) so the caller can commit the leaf before answering 403. ``from_peer``: a peer
    node forwards the envelope, and carried out its obligations (``AcceptRequest``).
    """
    node, caller, now = ctx.node, ctx.caller, ctx.now
    data = load_body(node, body)
    parties: dict[str, PartyFacts] | None = None
    if isinstance(data, dict) and "draft" in data:
        signed = await verified_submission(session, node=node, caller=caller, data=data, now=now)
    else:
        # The hot path: the signing key and both parties in one read.
        unsafe = checked_envelope(node, data)
        decoded, hint = peek(unsafe.payload)
        facts_key = (unsafe.signatures[0].keyid, caller.participant_id, hint)
        known = facts_memo.get(facts_key) if facts_memo is not None else None
        if known is None:
            known = await ingress_facts(
                session, kid=facts_key[0], sender=facts_key[1], recipient=facts_key[2]
            )
            if facts_memo is not None:
                facts_memo[facts_key] = known
        key, parties = known[0], dict(known[1])
        # A payload that validates names a participant id as recipient, so it is the hint.
        signed = verified_payload(unsafe, key, now=now, decoded=decoded)
    forwarded_from = signed.payload.forwarded_from
    if forwarded_from is not None:
        raise SchemaViolation(
            f"a forward goes to POST /v1/messages/{forwarded_from}/forward, which "
            "decides it against the terms of the original",
            field="payload.forwarded_from",
        )
    if not from_peer and (
        signed.payload.type in CASE_ONLY_TYPES or signed.payload.case_id is not None
    ):
        raise CaseEventOutsideCase(
            f"a {signed.payload.type} message that belongs to a case is sent by the case "
            "service (POST /v1/cases or POST /v1/cases/{id}/events, or the consent routes), "
            "which checks that the sender is a party of that case and the event is allowed",
            field="payload.case_id" if signed.payload.case_id is not None else "payload.type",
        )
    request = AcceptRequest(
        parties=parties, approved_by_workflow=from_peer, carried_out_elsewhere=from_peer
    )
    return await accept(session, ctx=ctx, signed=signed, request=request)


async def accept(
    session: AsyncSession,
    *,
    ctx: AnyContext,
    signed: Signed,
    request: AcceptRequest | None = None,
) -> Accepted | Refused:
    """Decide and store a message whose sender signature ``verified_submission`` checked: the
    one path by which anything is accepted (submissions, forwards, consent messages).

    ``request`` is what the caller adds (see ``AcceptRequest``). Raises SenderMismatch,
    ReplayConflict, ClockWindow, SchemaViolation, UnknownRecipient; returns ``Refused`` on a
    policy denial (its audit leaf flushed).
    """
    node, caller, now, policy = ctx.node, ctx.caller, ctx.now, ctx.policy
    envelope, payload, kid_used = signed
    request = request or AcceptRequest()
    held, known, audit_fields = request.held, request.known, request.audit_fields
    parties = request.parties
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
        parties = await party_facts(session, (payload.sender, payload.recipient))
    if payload.recipient not in parties:
        if existing := await _existing_answer(session, node, message_id, envelope.digest):
            return existing
        raise UnknownRecipient(
            f"no participant {payload.recipient} is registered", field="payload.recipient"
        )
    decision = decide(
        payload, parties[payload.sender], parties[payload.recipient], policy=policy, **known
    )
    base_fields: dict[str, Any] = {
        "message_type": payload.type,
        "sender": payload.sender,
        "recipient": payload.recipient,
        "legal_basis": payload.legal_basis,
        "case_id": str(payload.case_id) if payload.case_id else None,
        "forwarded_from": str(payload.forwarded_from) if payload.forwarded_from else None,
        "envelope_sha256": envelope.digest,
        "policy_pack": decision.pack_hash,
        "policy_rules": [r.rule_id for r in decision.reasons],
    }
    # The declared purpose may name a person ("investigation into Mario Rossi"): the leaf
    # commits to it and the text is kept in ``audit_texts``, erased with the message.
    texts = {"purpose": payload.purpose}
    required = (
        [] if request.approved_by_workflow else approvals.approval_obligations(decision.obligations)
    )
    refusal = _refusal(decision, required, holdable=request.holdable)
    if refusal is not None:
        if existing := await _existing_answer(session, node, message_id, envelope.digest):
            return existing
        metrics.count_policy_denials(r["rule"] for r in refusal)
        await record_event(
            session,
            kind=AuditKind.MESSAGE_REFUSED,
            node=node.node_id,
            actor=caller.actor(),
            participant_id=payload.sender,
            message_id=message_id,
            # A refused message is never stored, so its purpose has the default deadline.
            texts=texts,
            texts_until=now + dt.timedelta(days=node.retention_message_days),
            **base_fields,
            **audit_fields,
        )
        return Refused(
            message_id,
            refusal_reasons(
                decision,
                payload,
                parties[payload.sender],
                parties[payload.recipient],
                policy=policy,
                **known,
            )
            if not decision.permitted
            else refusal,
            decision.pack_hash,
            [{"kind": o.kind, "value": o.value, "rule": o.rule_id} for o in decision.obligations],
        )
    status = MessageStatus.PENDING_APPROVAL if required else MessageStatus.ACCEPTED
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
        "status": status.value,
        "submitted_by": caller.account_id,
        "legal_basis": payload.legal_basis,
        "purpose": payload.purpose,
        "handling_code": payload.handling.code if payload.handling else None,
        "urgent": payload.urgent,
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
        # A case's messages follow the case (broker.cases.scheduler sets theirs).
        "retention_until": None
        if payload.case_id
        else retention_deadline(
            now,
            obligations=[(o.kind, o.value) for o in decision.obligations],
            default_days=node.retention_message_days,
        ),
    }
    outbox = {
        "message_id": message_id,
        "recipient_id": payload.recipient,
        "created_at": now,
        "priority": OutboxPriority.of(payload.urgent).value,
    }
    kind, audit_fields = _acceptance_leaf(request, required)
    commitments, kept = commit_texts(texts)
    audit = audit_row(
        kind=kind,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=payload.sender,
        message_id=message_id,
        at=now,
        payload_size=len(envelope.payload),
        handling=row["handling_code"],
        **base_fields,
        **audit_fields,
        **commitments,
    )
    kept_rows = kept_text_rows(
        kept,
        event_id=audit["event_id"],
        message_id=message_id,
        case_id=base_fields["case_id"],
        until=None,
    )
    if not await store_accepted(session, row, None if required else outbox, audit, kept_rows):
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
    await _carry_out(
        session,
        ctx=ctx,
        message_id=message_id,
        sender=payload.sender,
        obligations=() if request.carried_out_elsewhere else decision.obligations,
        required=required,
        case_id=request.follow_up_case_id or (str(payload.case_id) if payload.case_id else None),
    )
    return Accepted(message_id, status.value, now, envelope_dict)


def _refusal(
    decision: Decision, required: Sequence[Obligation], *, holdable: bool
) -> list[dict[str, str]] | None:
    """The reasons to refuse a message, or None to accept it: a denial's, or, for a message
    whose caller cannot have it wait (``AcceptRequest.holdable``), the rules that require a
    supervisor's approval (fail closed: it is not sent unapproved)."""
    if not decision.permitted:
        return [
            {"rule": r.rule_id, "text": r.text, "citation": r.citation} for r in decision.reasons
        ]
    if not required or holdable:
        return None
    cited = {r.rule_id: r.citation for r in decision.reasons}
    return [
        {
            "rule": o.rule_id,
            "text": f"{o.value}: this kind of message is not held for a supervisor's approval, "
            "so it is not sent; send the material as a message or a forward, which waits "
            "for the approval",
            "citation": cited.get(o.rule_id, ""),
        }
        for o in required
    ]


def _acceptance_leaf(
    request: AcceptRequest, required: Sequence[Obligation]
) -> tuple[AuditKind, Mapping[str, Any]]:
    """The kind and the caller's fields of an acceptance's leaf: ``message:held``, naming the
    rules that require approval, for a message held for it."""
    if not required:
        return request.audit_kind or AuditKind.MESSAGE_ACCEPTED, request.audit_fields
    held = {**request.audit_fields, "held_for_approval": [o.rule_id for o in required]}
    return request.audit_kind or AuditKind.MESSAGE_HELD, held


async def _carry_out(
    session: AsyncSession,
    *,
    ctx: AnyContext,
    message_id: str,
    sender: str,
    obligations: Sequence[Obligation],
    required: Sequence[Obligation],
    case_id: str | None,
) -> None:
    """Hold a message just stored for its ``required`` approval (its follow-ups open when a
    supervisor approves it), or open its follow-ups now. A message whose sender's node
    carried them out comes with no ``obligations`` and no ``required`` approval."""
    follow_ups = approvals.follow_up_obligations(obligations)
    if required:
        await approvals.hold(
            session,
            message_id=message_id,
            participant_id=sender,
            drafter=ctx.caller.account_id,
            required=required,
            follow_ups=follow_ups,
            follow_up_case_id=case_id,
            now=ctx.now,
        )
    elif follow_ups:
        await open_follow_ups(
            session,
            node=ctx.node,
            actor=ctx.caller.actor(),
            participant_id=sender,
            obligations=follow_ups,
            message_id=message_id,
            case_id=case_id,
            now=ctx.now,
        )


async def sign_and_accept(
    session: AsyncSession,
    *,
    ctx: AnyContext,
    draft: Mapping[str, Any],
    request: AcceptRequest | None = None,
) -> Accepted | Refused:
    """Sign ``draft`` with the caller's participant's custodial key and ``accept`` it: how a
    domain sends a message of its own (a consent request or answer, a match query or answer,
    a case event). Flushes; the caller commits.

    Raises the draft errors of ``submit`` (Forbidden: no custodial key; SchemaViolation,
    PayloadTooLarge) and those of ``accept``; returns ``Refused`` on a policy denial.
    """
    signed = await verified_submission(
        session, node=ctx.node, caller=ctx.caller, data={"draft": dict(draft)}, now=ctx.now
    )
    return await accept(session, ctx=ctx, signed=signed, request=request)


def _seal(public_key: bytes | None, message_key: bytes) -> bytes | None:
    return crypto.seal(public_key, message_key) if public_key is not None else None


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
        "handling_texts": list(terms.handling_texts) or None,
    }


__all__ = [
    "CASE_ONLY_TYPES",
    "AcceptRequest",
    "Accepted",
    "Refused",
    "accept",
    "load_body",
    "sign_and_accept",
    "store_accepted",
    "submit",
    "terms_row",
]
