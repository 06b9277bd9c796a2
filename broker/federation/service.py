"""Peer nodes and the signed directory each node publishes of its participants and keys.

A node publishes, on ``GET /v1/federation/directory``, the participants it hosts (never those
behind a peer: nodes do not relay) with their public keys and validity, as a DSSE envelope
(``payloadType`` ``application/vnd.palermo.directory+json``) whose payload is canonical JSON
(sorted keys, no whitespace), signed by the node's directory key. Until keys per purpose exist
that is the node signing key; the document names it (``key_id``), so a later directory key
slots in without changing the format. ``serial`` is the issue time in microseconds since the
epoch: it only grows on one node.

A directory fetched from a peer is applied only if it verifies, all of it checked before
anything is written (fail closed):
- exactly one signature, by the peer's configured node key, and the document's ``key_id`` is
  that key and its ``node_id`` the peer's configured node id;
- its ``serial`` is greater than the last one applied for that peer (the same serial with the
  same digest is the same directory again: nothing to do), so an older directory cannot replay
  over a newer one; it was issued at most ``max_age_seconds`` ago and not in the future
  (beyond the clock skew);
- every participant it lists is of a jurisdiction configured for that peer, and new here or
  already registered behind THAT peer's node key (never a local participant, never another
  peer's), and every key id is its key's id and not registered to another participant.
Then participants new behind the peer are registered with adapter ``peer`` (the peer's URL and
node key); kind, name and status follow the directory; new keys are added with their validity;
a key ended or revoked on the peer is ended or revoked here (validity is only ever shortened,
a revocation never undone); a key no longer listed is revoked here; a participant no longer
listed is suspended. One audit leaf (``federation:directory-applied``) names what changed; a
directory that changes nothing writes none. A refused directory changes nothing but the
peer's failure count, and writes a ``federation:directory-refused`` leaf.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import adapters
from adapters import httpsig
from adapters.contracts import DestinationRules
from adapters.peer import decode_node_key
from broker.core import crypto
from broker.core.context import NO_ACTOR, Actor, NodeContext
from broker.core.db import Database, utcnow
from broker.core.errors import (
    Conflict,
    DirectoryRefused,
    NotFound,
    PalermoError,
    PeerUnreachable,
    SchemaViolation,
)
from broker.core.logging import get_logger
from broker.core.settings import Settings
from broker.delivery.federation import FORWARDING_ADAPTERS, peer_nodes
from broker.envelopes import dsse
from broker.envelopes.schemas import PARTICIPANT_ID_PATTERN
from broker.federation.models import FederationPeer
from broker.oversight.service import AuditKind, canonical_json, record_event
from broker.participants.models import (
    KeyPurpose,
    Participant,
    ParticipantKey,
    ParticipantKind,
    ParticipantStatus,
)

log = get_logger(__name__)

PAYLOAD_TYPE = "application/vnd.palermo.directory+json"
DIRECTORY_PATH = "/v1/federation/directory"
DIRECTORY_COMPONENTS = ("@method", "@target-uri")
FORMAT_VERSION = 1
ALGORITHMS = {KeyPurpose.SIGNING.value: "ed25519", KeyPurpose.ENCRYPTION.value: "x25519"}
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
REVOKED_ABSENT = "no longer in the peer node's directory"


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    max_age_seconds: int
    clock_skew_seconds: int
    timeout_seconds: float


def directory_config(settings: Settings) -> DirectoryConfig:
    return DirectoryConfig(
        max_age_seconds=settings.federation_directory_max_age_seconds,
        clock_skew_seconds=settings.clock_skew_seconds,
        timeout_seconds=settings.delivery_timeout_seconds,
    )


# --- peers --------------------------------------------------------------------------------


async def configure_peer(
    session: AsyncSession,
    *,
    node: NodeContext,
    node_id: str,
    url: str,
    node_key: str,
    jurisdictions: list[str],
    rules: DestinationRules,
    actor: Actor,
) -> FederationPeer:
    """Register a peer node, or change its URL or the jurisdictions it may host participants
    of; the URL is checked under the node's destination ``rules``. Raises SchemaViolation (a
    malformed or refused node id, URL, key or jurisdiction), Conflict (another node key for a
    known peer, or a key another peer has)."""
    if not re.fullmatch(NODE_ID_PATTERN, node_id) or len(node_id) > 64:
        raise SchemaViolation(f"node id {node_id!r} is not a node id", field="node_id")
    codes = sorted({j.upper() for j in jurisdictions})
    if not codes or not all(re.fullmatch(r"[A-Z]{2}", j) for j in codes):
        raise SchemaViolation(
            "jurisdictions: one or more ISO 3166 alpha-2 codes the peer hosts participants of",
            field="jurisdictions",
        )
    try:
        config = adapters.check_config("peer", {"url": url, "node_key": node_key}, rules=rules)
    except PalermoError as exc:
        raise SchemaViolation(exc.detail, field=str(exc.extra.get("field", "config"))) from exc
    key = decode_node_key(config["node_key"])
    kid = crypto.key_id(key)
    if kid == node.signer.key_id:
        raise SchemaViolation("that is this node's own key", field="node_key")
    peer = await session.get(FederationPeer, node_id)
    other = await session.scalar(select(FederationPeer).where(FederationPeer.node_key_id == kid))
    if other is not None and other.node_id != node_id:
        raise Conflict(f"node key {kid} is already the key of peer {other.node_id}")
    if peer is not None and peer.node_key_id != kid:
        raise Conflict(
            f"peer {node_id} has node key {peer.node_key_id}: a new node key is a new peer"
        )
    if peer is None:
        peer = FederationPeer(
            node_id=node_id,
            url=config["url"],
            node_key=key,
            node_key_id=kid,
            jurisdictions=codes,
            failures=0,
            created_at=utcnow(),
        )
        session.add(peer)
    elif (peer.url, list(peer.jurisdictions)) == (config["url"], codes):
        return peer
    else:
        peer.url, peer.jurisdictions = config["url"], codes
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.FEDERATION_PEER_CONFIGURED,
        node=node.node_id,
        actor=actor,
        peer=node_id,
        node_key_id=kid,
        jurisdictions=codes,
        url_sha256=hashlib.sha256(peer.url.encode()).hexdigest(),
    )
    return peer


async def list_peers(session: AsyncSession) -> list[FederationPeer]:
    return list(await session.scalars(select(FederationPeer).order_by(FederationPeer.node_id)))


async def get_peer(session: AsyncSession, node_id: str) -> FederationPeer:
    peer = await session.get(FederationPeer, node_id)
    if peer is None:
        raise NotFound(f"no peer node {node_id}")
    return peer


async def directory_readers(session: AsyncSession) -> dict[str, bytes]:
    """The node keys that may fetch this node's directory: configured peers, and the node
    keys participants are registered behind."""
    keys = {kid: node.public_key for kid, node in (await peer_nodes(session)).items()}
    for peer in await list_peers(session):
        keys[peer.node_key_id] = peer.node_key
    return keys


# --- publishing ---------------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _behind_a_peer(p: Participant) -> bool:
    return p.adapter in FORWARDING_ADAPTERS and bool((p.adapter_config or {}).get("node_key"))


async def build_directory(
    session: AsyncSession, *, node: NodeContext, now: dt.datetime | None = None
) -> dsse.VerifiedEnvelope:
    """This node's directory, signed by its directory key (for now the node signing key)."""
    when = now or utcnow()
    hosted = [
        p for p in (await session.scalars(select(Participant))).all() if not _behind_a_peer(p)
    ]
    ids = [p.id for p in hosted]
    keys: dict[str, list[ParticipantKey]] = {}
    if ids:
        rows = await session.scalars(
            select(ParticipantKey)
            .where(ParticipantKey.participant_id.in_(ids))
            .order_by(ParticipantKey.kid)
        )
        for key in rows:
            keys.setdefault(key.participant_id, []).append(key)
    document = {
        "v": FORMAT_VERSION,
        "node_id": node.node_id,
        "key_id": node.signer.key_id,
        "serial": int(when.timestamp() * 1_000_000),
        "issued_at": _time(when),
        "participants": [
            {
                "id": p.id,
                "kind": p.kind,
                "display_name": p.display_name,
                "status": p.status,
                "keys": [
                    {
                        "kid": k.kid,
                        "purpose": k.purpose,
                        "algorithm": k.algorithm,
                        "public_key": base64.b64encode(k.public_key).decode(),
                        "not_before": _time(k.not_before),
                        "not_after": _time(k.not_after),
                        "revoked_at": _time(k.revoked_at),
                    }
                    for k in keys.get(p.id, [])
                ],
            }
            for p in sorted(hosted, key=lambda p: p.id)
        ],
    }
    return dsse.sign_envelope(canonical_json(document), node.signer, payload_type=PAYLOAD_TYPE)


# --- verifying ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DirectoryKey:
    kid: str
    purpose: str
    algorithm: str
    public_key: bytes
    not_before: dt.datetime
    not_after: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    id: str
    kind: str
    display_name: str
    status: str
    keys: tuple[DirectoryKey, ...]


@dataclass(frozen=True, slots=True)
class Directory:
    """A peer's directory whose signature, node id, serial and freshness verified."""

    node_id: str
    key_id: str
    serial: int
    issued_at: dt.datetime
    digest: str
    participants: tuple[DirectoryEntry, ...]


def _refuse(reason: str, detail: str) -> DirectoryRefused:
    return DirectoryRefused(detail, reason=reason)


def _parse_time(value: Any, where: str, *, optional: bool = False) -> dt.datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _refuse("malformed", f"{where} is not a time")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _refuse("malformed", f"{where} is not an ISO 8601 time") from exc
    if parsed.tzinfo is None:
        raise _refuse("malformed", f"{where} has no time zone")
    return parsed.astimezone(dt.UTC)


def _parse_key(raw: Any, where: str) -> DirectoryKey:
    if not isinstance(raw, dict):
        raise _refuse("malformed", f"{where} is not an object")
    purpose, algorithm, kid = raw.get("purpose"), raw.get("algorithm"), raw.get("kid")
    if purpose not in ALGORITHMS or algorithm != ALGORITHMS[purpose]:
        raise _refuse("malformed", f"{where}: unknown purpose or algorithm")
    try:
        public = base64.b64decode(str(raw.get("public_key")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refuse("malformed", f"{where}.public_key is not base64") from exc
    if len(public) != 32 or kid != crypto.key_id(public):
        raise _refuse("malformed", f"{where}: kid is not the id of a 32-byte public key")
    not_before = _parse_time(raw.get("not_before"), f"{where}.not_before")
    assert not_before is not None
    return DirectoryKey(
        kid=kid,
        purpose=purpose,
        algorithm=algorithm,
        public_key=public,
        not_before=not_before,
        not_after=_parse_time(raw.get("not_after"), f"{where}.not_after", optional=True),
        revoked_at=_parse_time(raw.get("revoked_at"), f"{where}.revoked_at", optional=True),
    )


def _parse_entry(raw: Any, where: str) -> DirectoryEntry:
    if not isinstance(raw, dict):
        raise _refuse("malformed", f"{where} is not an object")
    pid, kind, name, status = (raw.get(k) for k in ("id", "kind", "display_name", "status"))
    if not isinstance(pid, str) or not re.fullmatch(PARTICIPANT_ID_PATTERN, pid):
        raise _refuse("malformed", f"{where}.id is not a participant id")
    if kind not in {k.value for k in ParticipantKind}:
        raise _refuse("malformed", f"{where}.kind {kind!r} is unknown")
    if not isinstance(name, str) or not name or len(name) > 200:
        raise _refuse("malformed", f"{where}.display_name must be 1 to 200 characters")
    if status not in {s.value for s in ParticipantStatus}:
        raise _refuse("malformed", f"{where}.status {status!r} is unknown")
    keys = raw.get("keys")
    if not isinstance(keys, list):
        raise _refuse("malformed", f"{where}.keys is not a list")
    return DirectoryEntry(
        pid,
        kind,
        name,
        status,
        tuple(_parse_key(k, f"{where}.keys[{i}]") for i, k in enumerate(keys)),
    )


def _open(body: bytes, peer: FederationPeer) -> tuple[dsse.VerifiedEnvelope, dict[str, Any]]:
    """The envelope verified under the peer's node key, and its payload. Raises
    DirectoryRefused."""
    try:
        envelope = dsse.parse_envelope_json(body)
    except PalermoError as exc:
        raise _refuse("malformed", f"not a DSSE envelope: {exc.detail}") from exc
    if envelope.payload_type != PAYLOAD_TYPE:
        raise _refuse("malformed", f"payloadType is not {PAYLOAD_TYPE}")
    if len(envelope.signatures) != 1 or envelope.signatures[0].keyid != peer.node_key_id:
        raise _refuse(
            "bad-signature", f"the directory is not signed by the node key {peer.node_key_id}"
        )
    try:
        verified = dsse.verify_signature(envelope, 0, peer.node_key)
    except PalermoError as exc:
        raise _refuse("bad-signature", exc.detail) from exc
    try:
        doc = orjson.loads(verified.payload)
    except orjson.JSONDecodeError as exc:
        raise _refuse("malformed", "the payload is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("v") != FORMAT_VERSION:
        raise _refuse("malformed", f"the payload is not a version {FORMAT_VERSION} directory")
    return verified, doc


def _check_origin(doc: dict[str, Any], peer: FederationPeer) -> tuple[int, dt.datetime]:
    """(serial, issued_at) once the document is the peer's own. Raises DirectoryRefused."""
    if doc.get("node_id") != peer.node_id:
        raise _refuse(
            "wrong-node", f"the directory is of node {doc.get('node_id')!r}, not {peer.node_id}"
        )
    if doc.get("key_id") != peer.node_key_id:
        raise _refuse("wrong-node", f"the directory names key {doc.get('key_id')!r}")
    serial = doc.get("serial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise _refuse("malformed", "serial is not a non-negative integer")
    issued_at = _parse_time(doc.get("issued_at"), "issued_at")
    assert issued_at is not None
    return serial, issued_at


def verify_directory(
    body: bytes, *, peer: FederationPeer, config: DirectoryConfig, now: dt.datetime
) -> Directory | None:
    """The peer's directory, verified; None if it is the directory last applied. Raises
    DirectoryRefused naming the reason (``bad-signature``, ``wrong-node``, ``replayed``,
    ``stale``, ``malformed``)."""
    verified, doc = _open(body, peer)
    serial, issued_at = _check_origin(doc, peer)
    if peer.directory_serial is not None and serial <= peer.directory_serial:
        if serial == peer.directory_serial and verified.digest == peer.directory_digest:
            return None
        raise _refuse(
            "replayed",
            f"serial {serial} is not newer than the last applied ({peer.directory_serial})",
        )
    if issued_at > now + dt.timedelta(seconds=config.clock_skew_seconds):
        raise _refuse("stale", "the directory is issued in the future")
    if now - issued_at > dt.timedelta(seconds=config.max_age_seconds):
        raise _refuse("stale", f"the directory was issued at {_time(issued_at)}: too old")
    raw = doc.get("participants")
    if not isinstance(raw, list):
        raise _refuse("malformed", "participants is not a list")
    entries = tuple(_parse_entry(p, f"participants[{i}]") for i, p in enumerate(raw))
    ids = [e.id for e in entries]
    kids = [k.kid for e in entries for k in e.keys]
    if len(set(ids)) != len(ids) or len(set(kids)) != len(kids):
        raise _refuse("malformed", "a participant or a key is listed twice")
    return Directory(
        node_id=peer.node_id,
        key_id=peer.node_key_id,
        serial=serial,
        issued_at=issued_at,
        digest=verified.digest,
        participants=entries,
    )


# --- applying -----------------------------------------------------------------------------


@dataclass
class Changes:
    registered: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    suspended: list[str] = field(default_factory=list)
    keys_added: list[str] = field(default_factory=list)
    keys_ended: list[str] = field(default_factory=list)
    keys_revoked: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return any(vars(self).values())

    def to_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in vars(self).items()}


def _behind(p: Participant, peer: FederationPeer) -> bool:
    if p.adapter not in FORWARDING_ADAPTERS:
        return False
    value = (p.adapter_config or {}).get("node_key")
    try:
        return value is not None and decode_node_key(value) == peer.node_key
    except PalermoError:
        return False


async def _check_scope(
    session: AsyncSession, *, peer: FederationPeer, directory: Directory
) -> dict[str, Participant]:
    """The listed participants already registered here, once each is behind ``peer`` and no
    listed key is registered to anyone else. Raises DirectoryRefused."""
    ids = [e.id for e in directory.participants]
    existing = {
        p.id: p
        for p in (await session.scalars(select(Participant).where(Participant.id.in_(ids)))).all()
    }
    allowed = set(peer.jurisdictions or [])
    for e in directory.participants:
        if e.id[:2].upper() not in allowed:
            raise _refuse(
                "jurisdiction",
                f"participant {e.id} is not of a jurisdiction {peer.node_id} may host"
                f" ({', '.join(sorted(allowed))})",
            )
    for pid, p in existing.items():
        if not _behind(p, peer):
            raise _refuse(
                "not-behind-peer",
                f"participant {pid} is not registered behind {peer.node_id}'s node key",
            )
    owners = {e.kid: (d.id, e.purpose) for d in directory.participants for e in d.keys}
    rows = await session.scalars(select(ParticipantKey).where(ParticipantKey.kid.in_(owners)))
    for mine in rows.all():
        if owners[mine.kid] != (mine.participant_id, mine.purpose):
            raise _refuse(
                "key-conflict", f"key {mine.kid} is registered here to {mine.participant_id}"
            )
    return existing


def _apply_participants(
    session: AsyncSession,
    *,
    peer: FederationPeer,
    directory: Directory,
    existing: dict[str, Participant],
    behind: list[Participant],
    changes: Changes,
) -> None:
    listed = {e.id for e in directory.participants}
    for e in directory.participants:
        p = existing.get(e.id)
        if p is None:
            session.add(
                Participant(
                    id=e.id,
                    kind=e.kind,
                    jurisdiction=e.id[:2].upper(),
                    display_name=e.display_name,
                    status=e.status,
                    adapter="peer",
                    adapter_config={
                        "url": peer.url,
                        "node_key": base64.b64encode(peer.node_key).decode(),
                    },
                    created_at=utcnow(),
                )
            )
            changes.registered.append(e.id)
        elif (p.kind, p.display_name, p.status) != (e.kind, e.display_name, e.status):
            p.kind, p.display_name, p.status = e.kind, e.display_name, e.status
            changes.updated.append(e.id)
    for p in behind:
        if p.id not in listed and p.status != ParticipantStatus.SUSPENDED:
            p.status = ParticipantStatus.SUSPENDED
            changes.suspended.append(p.id)


def _apply_keys(
    session: AsyncSession,
    *,
    peer: FederationPeer,
    directory: Directory,
    held: dict[str, ParticipantKey],
    changes: Changes,
) -> None:
    now = utcnow()
    for e in directory.participants:
        for k in e.keys:
            mine = held.get(k.kid)
            if mine is None:
                session.add(
                    ParticipantKey(
                        kid=k.kid,
                        participant_id=e.id,
                        purpose=k.purpose,
                        algorithm=k.algorithm,
                        public_key=k.public_key,
                        not_before=k.not_before,
                        not_after=k.not_after,
                        revoked_at=k.revoked_at,
                        revocation_reason=None if k.revoked_at is None else "revoked on the peer",
                        created_at=now,
                    )
                )
                changes.keys_added.append(k.kid)
                continue
            if k.revoked_at is not None and mine.revoked_at is None:
                mine.revoked_at = k.revoked_at
                mine.revocation_reason = f"revoked on the peer node {peer.node_id}"
                changes.keys_revoked.append(k.kid)
            if k.not_after is not None and (mine.not_after is None or k.not_after < mine.not_after):
                mine.not_after = k.not_after  # validity is only ever shortened here
                changes.keys_ended.append(k.kid)
    listed = {k.kid for e in directory.participants for k in e.keys}
    for kid, mine in held.items():
        if kid not in listed and mine.revoked_at is None:
            mine.revoked_at = now
            mine.revocation_reason = REVOKED_ABSENT
            changes.keys_revoked.append(kid)


async def apply_directory(
    session: AsyncSession, *, node: NodeContext, peer: FederationPeer, directory: Directory
) -> Changes:
    """Bring the participants behind ``peer`` in line with its verified directory. Checks
    everything before it writes. Flushes. Raises DirectoryRefused (``not-behind-peer``,
    ``key-conflict``): nothing is written then."""
    existing = await _check_scope(session, peer=peer, directory=directory)
    forwarding = await session.scalars(
        select(Participant).where(Participant.adapter.in_(FORWARDING_ADAPTERS))
    )
    behind = [p for p in forwarding.all() if _behind(p, peer)]
    changes = Changes()
    _apply_participants(
        session,
        peer=peer,
        directory=directory,
        existing=existing,
        behind=behind,
        changes=changes,
    )
    await session.flush()
    owners = [p.id for p in behind] + [e.id for e in directory.participants]
    rows = await session.scalars(
        select(ParticipantKey).where(ParticipantKey.participant_id.in_(owners))
    )
    held = {k.kid: k for k in rows.all()}
    _apply_keys(session, peer=peer, directory=directory, held=held, changes=changes)
    peer.directory_serial = directory.serial
    peer.directory_issued_at = directory.issued_at
    peer.directory_digest = directory.digest
    peer.synced_at = utcnow()
    await session.flush()
    if changes.any():
        await record_event(
            session,
            kind=AuditKind.FEDERATION_DIRECTORY_APPLIED,
            node=node.node_id,
            actor=NO_ACTOR,
            peer=peer.node_id,
            node_key_id=peer.node_key_id,
            serial=directory.serial,
            directory_sha256=directory.digest,
            changes=changes.to_dict(),
        )
    return changes


async def record_refusal(
    session: AsyncSession, *, node: NodeContext, peer: FederationPeer, error: DirectoryRefused
) -> None:
    """Count the refusal on the peer and write the alert leaf. Flushes."""
    now = utcnow()
    peer.failures = (peer.failures or 0) + 1
    peer.last_failure_at = now
    peer.last_error = f"{error.extra.get('reason', 'refused')}: {error.detail}"[:1000]
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.FEDERATION_DIRECTORY_REFUSED,
        node=node.node_id,
        actor=NO_ACTOR,
        peer=peer.node_id,
        node_key_id=peer.node_key_id,
        reason=str(error.extra.get("reason", "refused")),
        detail=error.detail,
    )


# --- fetching -----------------------------------------------------------------------------


async def fetch_directory(
    peer: FederationPeer, *, node: NodeContext, timeout_seconds: float
) -> bytes:
    """GET the peer's directory in a request signed by this node (RFC 9421). Raises
    PeerUnreachable."""
    url = peer.url.rstrip("/") + DIRECTORY_PATH
    headers = {"X-Palermo-Node": node.node_id, "Accept": "application/json"}
    headers.update(
        httpsig.sign(
            method="GET",
            url=url,
            headers=headers,
            body=b"",
            signer=node.signer,
            components=DIRECTORY_COMPONENTS,
        )
    )
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds) as client:
            response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise PeerUnreachable(
            f"peer {peer.node_id} is unreachable ({type(exc).__name__})", peer=peer.node_id
        ) from exc
    if response.status_code != 200:
        raise PeerUnreachable(
            f"peer {peer.node_id} answered HTTP {response.status_code}", peer=peer.node_id
        )
    return response.content


@dataclass(frozen=True, slots=True)
class SyncResult:
    peer: str
    outcome: str  # applied, unchanged, refused, unreachable
    serial: int | None = None
    changes: Changes | None = None
    error: str | None = None


async def sync_peer(
    db: Database, *, node: NodeContext, node_id: str, config: DirectoryConfig
) -> SyncResult:
    """Fetch, verify and apply one peer's directory, in its own transaction; a refusal is
    recorded in another. Raises NotFound; never raises for what the peer sent."""
    async with db.session() as session:
        peer = await get_peer(session, node_id)
        url_peer = FederationPeer(
            node_id=peer.node_id, url=peer.url, node_key=peer.node_key, node_key_id=peer.node_key_id
        )
    try:
        body = await fetch_directory(url_peer, node=node, timeout_seconds=config.timeout_seconds)
    except PeerUnreachable as exc:
        log.warning("federation: peer directory not fetched", peer=node_id, error=exc.detail)
        return SyncResult(node_id, "unreachable", error=exc.detail)
    return await receive_directory(db, node=node, node_id=node_id, body=body, config=config)


async def receive_directory(
    db: Database, *, node: NodeContext, node_id: str, body: bytes, config: DirectoryConfig
) -> SyncResult:
    """Verify and apply a directory ``body`` said to be ``node_id``'s (fetched, or handed
    over out of band). Raises NotFound."""
    try:
        async with db.session() as session:
            # Locked, so a beat run and an operator's sync cannot both apply over one serial.
            peer = await session.scalar(
                select(FederationPeer).where(FederationPeer.node_id == node_id).with_for_update()
            )
            if peer is None:
                raise NotFound(f"no peer node {node_id}")
            directory = verify_directory(body, peer=peer, config=config, now=utcnow())
            if directory is None:
                peer.synced_at = utcnow()
                await session.commit()
                return SyncResult(node_id, "unchanged", serial=peer.directory_serial)
            changes = await apply_directory(session, node=node, peer=peer, directory=directory)
            await session.commit()
            return SyncResult(node_id, "applied", serial=directory.serial, changes=changes)
    except DirectoryRefused as exc:
        async with db.session() as session:
            peer = await get_peer(session, node_id)
            await record_refusal(session, node=node, peer=peer, error=exc)
            await session.commit()
        log.warning(
            "federation: peer directory refused",
            peer=node_id,
            reason=exc.extra.get("reason"),
            error=exc.detail,
        )
        return SyncResult(node_id, "refused", error=exc.detail)


async def sync_all(
    db: Database, *, node: NodeContext, config: DirectoryConfig, only: str | None = None
) -> list[SyncResult]:
    """Sync every configured peer (or ``only`` that one). Raises NotFound for ``only``."""
    async with db.session() as session:
        names = [only] if only else [p.node_id for p in await list_peers(session)]
        if only:
            await get_peer(session, only)
    return [await sync_peer(db, node=node, node_id=name, config=config) for name in names]


__all__ = [
    "DIRECTORY_COMPONENTS",
    "DIRECTORY_PATH",
    "PAYLOAD_TYPE",
    "Changes",
    "Directory",
    "DirectoryConfig",
    "SyncResult",
    "apply_directory",
    "build_directory",
    "configure_peer",
    "directory_config",
    "directory_readers",
    "fetch_directory",
    "get_peer",
    "list_peers",
    "receive_directory",
    "record_refusal",
    "sync_all",
    "sync_peer",
    "verify_directory",
]
