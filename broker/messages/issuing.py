"""Messages the node issues itself: a ``notice`` to a participant about one of its cases (a
reminder, an escalation, a review, a follow-up the case clocks raised).

A notice is signed by the node's own key, once: no participant signed it, so its envelope
carries the node's signature only (the one a reader checks, as it checks the node's
countersignature on other messages). The ``messages`` table names participants only, so a
notice's sender and recipient are both the participant it is for, as for a case's drafting
events; its body's ``issued_by`` names the node. It is stored as ``accept`` stores a
message: encrypted under a key of its own (wrapped for the node and sealed to the
participant), with its outbox row, so it reaches the participant's inbox or webhook through
the ordinary delivery path, and its one ``message:accepted`` leaf. It is not put to the
policy engine: it carries the case's id, the rule and the due date, no content of the case.

Invariants: written in the caller's transaction (the case event that raised it and the
message commit together, or neither does), so a notice is issued once per raised event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import crypto
from broker.core.context import NodeContext
from broker.core.errors import UnknownRecipient
from broker.core.ids import uuid7
from broker.envelopes import dsse
from broker.messages.ingress import store_accepted
from broker.messages.keys import party_facts
from broker.messages.models import MessageStatus, OutboxPriority
from broker.oversight.service import AuditKind, audit_row

NOTICE_TYPE = "notice"
NODE_ISSUED = "node-issued"
"""The ``policy_hash`` of a message the node issued itself: no pack decided it."""


async def issue_notice(
    session: AsyncSession,
    *,
    node: NodeContext,
    recipient: str,
    case_id: str,
    urgent: bool,
    body: Mapping[str, Any],
    legal_basis: str | None,
    purpose: str | None,
    now: dt.datetime,
    audit_fields: Mapping[str, Any],
) -> str:
    """Issue a node-signed ``notice`` to ``recipient`` about case ``case_id``; return its
    message id. Flushes; the caller commits. Raises UnknownRecipient if ``recipient`` is
    not registered (a case's parties always are)."""
    message_id = str(uuid7())
    parties = await party_facts(session, (recipient, recipient))
    facts = parties.get(recipient)
    if facts is None:
        raise UnknownRecipient(f"no participant {recipient} is registered")
    payload = orjson.dumps(
        {
            "id": message_id,
            "type": NOTICE_TYPE,
            "sender": recipient,
            "recipient": recipient,
            "case_id": case_id,
            "created_at": now.isoformat(),
            "urgent": urgent,
            **({"legal_basis": legal_basis} if legal_basis else {}),
            **({"purpose": purpose} if purpose else {}),
            "body": {**body, "issued_by": node.node_id},
        }
    )
    envelope = dsse.sign_envelope(payload, node.signer)
    envelope_dict = envelope.to_dict()
    message_key = crypto.random_key()
    sealed = (
        crypto.seal(facts.encryption_key, message_key) if facts.encryption_key is not None else None
    )
    row: dict[str, Any] = {
        "id": message_id,
        "type": NOTICE_TYPE,
        "sender_id": recipient,
        "recipient_id": recipient,
        "case_id": case_id,
        "in_reply_to": None,
        "created_at": now,
        "accepted_at": now,
        "status": MessageStatus.ACCEPTED.value,
        "submitted_by": "node",
        "legal_basis": legal_basis,
        "purpose": purpose,
        "handling_code": None,
        "urgent": urgent,
        "payload_size": len(payload),
        "envelope_sha256": envelope.digest,
        "sender_kid": envelope.signatures[0].keyid,
        "policy_hash": NODE_ISSUED,
        "policy_rules": [],
        "ciphertext": crypto.secretbox_encrypt(message_key, orjson.dumps(envelope_dict)),
        "key_for_node": crypto.secretbox_encrypt(node.master_key, message_key),
        "key_for_sender": sealed,
        "key_for_recipient": sealed,
        "sender_enc_kid": facts.encryption_kid,
        "recipient_enc_kid": facts.encryption_kid,
        # A case's messages follow the case (broker.cases.scheduler sets theirs).
        "retention_until": None,
    }
    outbox = {
        "message_id": message_id,
        "recipient_id": recipient,
        "created_at": now,
        "priority": OutboxPriority.of(urgent).value,
    }
    audit = audit_row(
        kind=AuditKind.MESSAGE_ACCEPTED,
        node=node.node_id,
        actor=None,
        participant_id=recipient,
        message_id=message_id,
        at=now,
        message_type=NOTICE_TYPE,
        sender=recipient,
        recipient=recipient,
        case_id=case_id,
        envelope_sha256=envelope.digest,
        payload_size=len(payload),
        urgent=urgent,
        issued_by=node.node_id,
        **audit_fields,
    )
    stored = await store_accepted(session, row, outbox, audit)
    assert stored, "a fresh UUIDv7 is never taken"
    return message_id


__all__ = ["NODE_ISSUED", "NOTICE_TYPE", "issue_notice"]
