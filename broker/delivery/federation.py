"""Receiving from peer nodes: forwarded envelopes, over HTTP or from a file drop.

How a node knows its peers: a participant hosted by another node is registered here with
adapter ``peer`` (or ``filedrop``) and a ``node_key`` in its adapter configuration, and with
its own public signing keys as any participant. So the registry says, for each peer node key,
which participants that node may forward messages from.

A forwarded envelope carries exactly two signatures: the sender's, then the forwarding
node's. It is accepted only if
- the forwarding node's key is a configured peer key and its countersignature verifies (and,
  over HTTP, the same key signed the request, RFC 9421);
- the sender is a participant registered behind that node key, and the sender's signature
  verifies under one of the sender's registered keys (the ingress checks of ``submit``);
- the recipient is hosted here (not itself behind a peer: no relaying between nodes);
- this node's own policy permits it.
Then it is stored and countersigned as a message submitted here would be (same replay rule:
the same envelope again returns the first answer), with ``peer:<node key id>`` as the
submitting account, so the audit leaf says which node forwarded it. The clock window is the
federation window (``PALERMO_FEDERATION_MAX_AGE_SECONDS``): the origin node checked freshness
at acceptance, and a retried delivery may arrive hours later.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.filedrop import drop_files, settle
from adapters.peer import decode_node_key
from broker.core import crypto
from broker.core.context import CallContext, Caller, NodeContext
from broker.core.db import Database, utcnow
from broker.core.errors import (
    BadSignature,
    PalermoError,
    SchemaViolation,
    SenderMismatch,
    UnknownRecipient,
)
from broker.envelopes import dsse
from broker.messages import Accepted, Refused, parse_payload, submit
from broker.participants.models import Participant

FORWARDING_ADAPTERS = ("peer", "filedrop")


@dataclass
class PeerNode:
    key_id: str
    public_key: bytes
    participants: set[str] = field(default_factory=set)


async def peer_nodes(session: AsyncSession) -> dict[str, PeerNode]:
    """Peer node key id -> the node's key and the participants it hosts."""
    nodes: dict[str, PeerNode] = {}
    rows = await session.execute(
        select(Participant.id, Participant.adapter_config).where(
            Participant.adapter.in_(FORWARDING_ADAPTERS)
        )
    )
    for pid, config in rows.all():
        value = (config or {}).get("node_key")
        if value is None:
            continue
        try:
            key = decode_node_key(value)
        except PalermoError:
            continue  # the startup check refuses such a configuration
        node = nodes.setdefault(crypto.key_id(key), PeerNode(crypto.key_id(key), key))
        node.participants.add(pid)
    return nodes


async def accept_forwarded(
    session: AsyncSession,
    *,
    node: NodeContext,
    body: bytes,
    peers: dict[str, PeerNode],
    max_age_seconds: int,
    request_key_id: str | None = None,
) -> Accepted | Refused:
    """Accept an envelope forwarded by a peer node. ``request_key_id`` is the key that signed
    the HTTP request, when it came over HTTP: it must be the countersigning node's. Flushes.

    Raises SchemaViolation, BadSignature, SenderMismatch, UnknownRecipient, the ingress errors
    of ``submit``."""
    envelope = dsse.parse_envelope_json(body)
    if len(envelope.signatures) != 2:
        raise SchemaViolation(
            "a forwarded envelope carries two signatures: the sender's, then its node's",
            field="signatures",
        )
    forwarder = envelope.signatures[1].keyid
    peer = peers.get(forwarder)
    if peer is None:
        raise BadSignature(
            f"signature 1 is by {forwarder}, which is not a peer node's key", field="signatures[1]"
        )
    if request_key_id is not None and request_key_id != forwarder:
        raise BadSignature(
            "the request is signed by another node than the one that countersigned the envelope",
            field="signatures[1]",
        )
    dsse.verify_signature(envelope, 1, peer.public_key)
    # Signed by a known node; the sender's own signature is checked by submit below.
    unsafe = parse_payload(envelope.payload)
    if unsafe.sender not in peer.participants:
        raise SenderMismatch(
            f"{unsafe.sender} is not registered behind the forwarding node {forwarder}",
            field="payload.sender",
        )
    recipient = await session.get(Participant, unsafe.recipient)
    if recipient is None:
        raise UnknownRecipient(
            f"no participant {unsafe.recipient} is registered", field="payload.recipient"
        )
    if recipient.adapter in FORWARDING_ADAPTERS and recipient.adapter_config.get("node_key"):
        raise UnknownRecipient(
            f"{unsafe.recipient} is not hosted by this node: nodes do not relay for each other",
            field="payload.recipient",
        )
    caller = Caller(
        account_id=f"peer:{forwarder}",
        participant_id=unsafe.sender,
        roles=frozenset({"system"}),
        kind="peer",
    )
    single: dict[str, Any] = envelope.to_dict()
    single["signatures"] = single["signatures"][:1]
    node = dataclasses.replace(node, clock_skew_seconds=max_age_seconds)
    # The sender's node held the envelope for its supervisor's approval and opened its
    # follow-ups (broker.messages.approvals): they are not repeated here.
    return await submit(
        session,
        ctx=CallContext(node, caller, None, None, utcnow()),
        body=orjson.dumps(single),
        from_peer=True,
    )


@dataclass
class ImportReport:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


async def import_drop(
    db: Database, node: NodeContext, directory: Path, *, max_age_seconds: int
) -> ImportReport:
    """Import the envelopes a peer node dropped in ``directory``, one transaction per file;
    each file is moved to ``processed/`` or ``rejected/`` only after its transaction
    committed, so a crash in between imports it again (a duplicate: stored once). Database
    errors propagate and leave the files where they are."""
    report = ImportReport()
    for path in drop_files(directory):
        body = path.read_bytes()
        try:
            async with db.session() as session:
                outcome = await accept_forwarded(
                    session,
                    node=node,
                    body=body,
                    peers=await peer_nodes(session),
                    max_age_seconds=max_age_seconds,
                )
                await session.commit()
        except PalermoError as exc:
            settle(path, accepted=False, reason=f"{exc.slug}: {exc.detail}")
            report.rejected.append((path.name, exc.slug))
            continue
        if isinstance(outcome, Refused):
            reasons = ", ".join(r["rule"] for r in outcome.reasons)
            settle(path, accepted=False, reason=f"policy-denied: {reasons}")
            report.rejected.append((path.name, "policy-denied"))
        else:
            settle(path, accepted=True)
            (report.duplicates if outcome.duplicate else report.accepted).append(outcome.message_id)
    return report


__all__ = [
    "ImportReport",
    "PeerNode",
    "accept_forwarded",
    "import_drop",
    "peer_nodes",
]
