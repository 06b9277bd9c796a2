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
- a case event (a type of ``messages.CASE_ONLY_TYPES``, or any message naming a case) names
  its case, and when that case is held here, both sender and recipient are its parties: a
  participant behind a peer cannot write into another pair's case (issue 14 item 5). A case
  held by the peer was checked by the peer's case service (the sender is a party there);
- this node's own policy permits it.
Then it is stored and countersigned as a message submitted here would be (same replay rule:
the same envelope again returns the first answer), with ``peer:<node key id>`` as the
submitting account, so the audit leaf says which node forwarded it. The clock window is the
federation window (``PALERMO_FEDERATION_MAX_AGE_SECONDS``): the origin node checked freshness
at acceptance, and a retried delivery may arrive hours later.

A batch (``accept_forwarded_batch``, ``POST /v1/federation/batch``) is many such envelopes in
one signed request: each is accepted or refused on its own, exactly as it would be alone (in
its own savepoint when any of them is refused), so a refused envelope stores nothing and
does not undo the others; the caller commits them all at once.
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
from broker.cases.models import Case
from broker.core import crypto
from broker.core.context import CallContext, Caller, NodeContext
from broker.core.db import Database, utcnow
from broker.core.errors import (
    BadSignature,
    CaseEventOutsideCase,
    Forbidden,
    MalformedJSON,
    PalermoError,
    SchemaViolation,
    SenderMismatch,
    UnknownRecipient,
)
from broker.envelopes import dsse
from broker.envelopes.schemas import MessagePayload
from broker.messages import CASE_ONLY_TYPES, Accepted, FactsMemo, Refused, parse_payload, submit
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


def _behind_a_node(p: Participant) -> bool:
    return p.adapter in FORWARDING_ADAPTERS and bool((p.adapter_config or {}).get("node_key"))


async def hosted_elsewhere(session: AsyncSession) -> frozenset[str]:
    """The participants registered here as hosted by another node (a forwarding adapter with
    a node key): a node does not relay messages for them."""
    rows = await session.execute(
        select(Participant.id, Participant.adapter_config).where(
            Participant.adapter.in_(FORWARDING_ADAPTERS)
        )
    )
    return frozenset(pid for pid, config in rows.all() if (config or {}).get("node_key"))


async def accept_forwarded(
    session: AsyncSession,
    *,
    node: NodeContext,
    body: bytes,
    peers: dict[str, PeerNode],
    max_age_seconds: int,
    request_key_id: str | None = None,
    elsewhere: frozenset[str] | None = None,
    facts_memo: FactsMemo | None = None,
) -> Accepted | Refused:
    """Accept an envelope forwarded by a peer node. ``request_key_id`` is the key that signed
    the HTTP request, when it came over HTTP: it must be the countersigning node's.
    ``elsewhere`` (``hosted_elsewhere``, read once for a batch) spares the read of the
    recipient's registration, and ``facts_memo`` the read of keys and parties already read for
    an earlier envelope of the same batch (``submit``). Flushes.

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
    if elsewhere is None:
        recipient = await session.get(Participant, unsafe.recipient)
        if recipient is None:
            raise UnknownRecipient(
                f"no participant {unsafe.recipient} is registered", field="payload.recipient"
            )
        elsewhere = frozenset({unsafe.recipient} if _behind_a_node(recipient) else ())
    # An unregistered recipient is refused by ``submit`` (UnknownRecipient, the same problem).
    if unsafe.recipient in elsewhere:
        raise UnknownRecipient(
            f"{unsafe.recipient} is not hosted by this node: nodes do not relay for each other",
            field="payload.recipient",
        )
    await _check_case_parties(session, unsafe)
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
        facts_memo=facts_memo,
    )


async def _check_case_parties(session: AsyncSession, unsafe: MessagePayload) -> None:
    """Raises CaseEventOutsideCase (a case-only type without its case) or Forbidden (a case
    held here of which sender and recipient are not the two parties)."""
    if unsafe.case_id is None:
        if unsafe.type in CASE_ONLY_TYPES:
            raise CaseEventOutsideCase(
                f"a forwarded {unsafe.type} message names the case it belongs to",
                field="payload.case_id",
            )
        return
    case = await session.get(Case, str(unsafe.case_id))
    if case is not None and {unsafe.sender, unsafe.recipient} != {
        case.requesting_id,
        case.requested_id,
    }:
        raise Forbidden(
            f"case {unsafe.case_id} is held by this node and is between "
            f"{case.requesting_id} and {case.requested_id}: {unsafe.sender} cannot send "
            f"{unsafe.recipient} an event of it",
            field="payload.case_id",
        )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One envelope's answer within a batch: what the single endpoint would have answered,
    its HTTP status and either the accepted message or the problem document."""

    status: int
    accepted: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None

    def to_dict(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index, "status": self.status}
        if self.accepted is not None:
            out["accepted"] = self.accepted
        if self.problem is not None:
            out["problem"] = self.problem
        return out


def parse_batch(body: bytes, *, max_envelopes: int) -> list[bytes]:
    """The envelopes of a batch body ``{"envelopes": [<envelope>, ...]}``, each as JSON bytes
    for ``accept_forwarded``. Raises MalformedJSON, SchemaViolation (not that shape, empty, or
    more than ``max_envelopes``)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) != {"envelopes"}:
        raise SchemaViolation(
            'a federation batch is an object with one member, "envelopes"', field="$"
        )
    envelopes = data["envelopes"]
    if not isinstance(envelopes, list) or not envelopes:
        raise SchemaViolation(
            "envelopes is a non-empty array of forwarded envelopes", field="envelopes"
        )
    if len(envelopes) > max_envelopes:
        raise SchemaViolation(
            f"a federation batch holds at most {max_envelopes} envelopes, not {len(envelopes)}",
            field="envelopes",
            limit=max_envelopes,
        )
    return [orjson.dumps(e) for e in envelopes]


@dataclass(frozen=True, slots=True)
class _BatchReads:
    """What a batch reads once for all its envelopes, within its one transaction."""

    elsewhere: frozenset[str]
    facts: FactsMemo


async def accept_forwarded_batch(
    session: AsyncSession,
    *,
    node: NodeContext,
    bodies: list[bytes],
    peers: dict[str, PeerNode],
    max_age_seconds: int,
    request_key_id: str,
) -> list[BatchResult]:
    """``accept_forwarded`` for each envelope of a batch whose request ``request_key_id``
    signed, in order: an envelope refused (a problem, or a policy denial, whose audit leaf is
    kept as the single endpoint keeps it) leaves the others as they are; a replayed one gets
    its first answer. Flushes; the caller commits. Database errors propagate (the whole batch
    is then not stored, and the sender retries it).

    The common batch, every envelope accepted, runs in one savepoint; if an envelope raises,
    that savepoint is rolled back and the batch runs again with a savepoint per envelope, so
    a refused envelope never leaves anything of itself behind, whatever it wrote first."""
    context = _BatchReads(await hosted_elsewhere(session), {})
    whole = await session.begin_nested()
    try:
        results = [
            await _one(session, node, body, index, peers, max_age_seconds, request_key_id, context)
            for index, body in enumerate(bodies)
        ]
    except PalermoError:
        await whole.rollback()
    else:
        await whole.commit()
        return results
    results = []
    context.facts.clear()  # read again: what the rolled back savepoint read may be gone
    for index, body in enumerate(bodies):
        savepoint = await session.begin_nested()
        try:
            result = await _one(
                session, node, body, index, peers, max_age_seconds, request_key_id, context
            )
        except PalermoError as exc:
            await savepoint.rollback()
            results.append(BatchResult(exc.status, problem=exc.problem(f"envelopes[{index}]")))
            continue
        await savepoint.commit()
        results.append(result)
    return results


async def _one(
    session: AsyncSession,
    node: NodeContext,
    body: bytes,
    index: int,
    peers: dict[str, PeerNode],
    max_age_seconds: int,
    request_key_id: str,
    context: _BatchReads,
) -> BatchResult:
    """One envelope's result; raises what ``accept_forwarded`` raises."""
    outcome = await accept_forwarded(
        session,
        node=node,
        body=body,
        peers=peers,
        max_age_seconds=max_age_seconds,
        request_key_id=request_key_id,
        elsewhere=context.elsewhere,
        facts_memo=context.facts,
    )
    if isinstance(outcome, Refused):
        denied = outcome.error()
        return BatchResult(denied.status, problem=denied.problem(f"envelopes[{index}]"))
    return BatchResult(200 if outcome.duplicate else 202, accepted=outcome.to_dict())


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
    "BatchResult",
    "ImportReport",
    "PeerNode",
    "accept_forwarded",
    "accept_forwarded_batch",
    "hosted_elsewhere",
    "import_drop",
    "parse_batch",
    "peer_nodes",
]
