"""The keys and parties an ingress decision reads, in one statement.

A submission names its signing key (``signatures[0].keyid``), its sender and its recipient;
``ingress_facts`` reads the key and both parties with their current encryption keys in one
round trip, the only read of the hot path. ``check_signing_key`` says whether a key may sign
for a sender now: it is the sender's, a signing key, not revoked and within its validity.
Stored datetimes are read as UTC (``as_utc``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.db import HotStatement, UTCDateTime, utcnow
from broker.core.errors import (
    ExpiredKey,
    KeyNotSenders,
    RevokedKey,
    UnknownKey,
)
from broker.messages.policy import PartyFacts
from broker.participants.models import KeyPurpose


def check_signing_key(row: Any, *, sender: str, now: dt.datetime, kid: str) -> None:
    if row.participant_id != sender:
        raise KeyNotSenders(f"key {kid} belongs to {row.participant_id}, not to {sender}")
    if row.purpose != KeyPurpose.SIGNING:
        raise KeyNotSenders(f"key {kid} is not a signing key")
    if row.revoked_at is not None and as_utc(row.revoked_at) <= now:
        raise RevokedKey(f"key {kid} was revoked at {as_utc(row.revoked_at).isoformat()}")
    if as_utc(row.not_before) > now or (row.not_after is not None and as_utc(row.not_after) <= now):
        raise ExpiredKey(f"key {kid} is not valid now")


def as_utc(value: dt.datetime) -> dt.datetime:
    """In UTC: stored naive datetimes are UTC; psycopg answers in the session's time zone."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class SigningKey:
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


async def ingress_facts(
    session: AsyncSession, *, kid: str | None, sender: str | None, recipient: str | None
) -> tuple[SigningKey | None, dict[str, PartyFacts]]:
    """The signing key ``kid`` (when given) and both parties with their current encryption
    keys, in one statement: the only read of the ingress path."""
    now = utcnow()
    key: SigningKey | None = None
    facts: dict[str, PartyFacts] = {}
    best: dict[str, tuple[str, bytes, dt.datetime]] = {}
    rows = await _FACTS.rows(session, {"kid": kid, "sender": sender, "recipient": recipient})
    for part, pid, kind, jurisdiction, status, k_id, public, not_before, na, revoked in rows:
        if part == "k":
            key = SigningKey(
                pid,
                kind,
                bytes(public),
                as_utc(not_before),
                na and as_utc(na),
                revoked and as_utc(revoked),
            )
            continue
        facts.setdefault(pid, PartyFacts(pid, kind, jurisdiction, status == "active"))
        if k_id is None:
            continue
        nb = as_utc(not_before)
        valid = (
            (revoked is None or as_utc(revoked) > now)
            and nb <= now
            and (na is None or as_utc(na) > now)
        )
        if valid and (pid not in best or nb > best[pid][2]):
            best[pid] = (k_id, bytes(public), nb)
    for pid, (k_id, public, _) in best.items():
        facts[pid] = facts[pid].with_encryption_key(k_id, public)
    return key, facts


async def encryption_keys(
    session: AsyncSession, first: str, second: str
) -> dict[str, tuple[str, bytes]]:
    """The current encryption key (kid, X25519 public key) of each of two participants that
    has one: what the node seals content keys to."""
    _, facts = await ingress_facts(session, kid=None, sender=first, recipient=second)
    return {
        pid: (f.encryption_kid, f.encryption_key)
        for pid, f in facts.items()
        if f.encryption_kid is not None and f.encryption_key is not None
    }


async def signing_key(session: AsyncSession, kid: str) -> SigningKey:
    key, _ = await ingress_facts(session, kid=kid, sender=None, recipient=None)
    if key is None:
        raise UnknownKey(f"no registered key has id {kid}", field="signatures[0].keyid")
    return key


async def party_facts(session: AsyncSession, ids: tuple[str, str]) -> dict[str, PartyFacts]:
    """Both parties and their current encryption keys, in one round trip."""
    return (await ingress_facts(session, kid=None, sender=ids[0], recipient=ids[1]))[1]


__all__ = [
    "SigningKey",
    "as_utc",
    "check_signing_key",
    "ingress_facts",
    "party_facts",
    "signing_key",
]
