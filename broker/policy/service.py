"""The node's policy: the packs it enforces, the reference data it builds contexts with, and
the audit of every change to them.

Invariants:
- A node enforces the shipped packs (less those ``PALERMO_POLICY_DISABLED`` switches off) and
  the packs under ``PALERMO_POLICY_PATHS``, loaded and checked once per process before the
  first request: a bad pack, an unknown pack name or a missing path stops the node from
  starting (fail closed), never a request.
- The reference data is the shipped data, or ``PALERMO_REFERENCE_DATA_DIR``.
- When a node starts with a policy set whose hash differs from the last ``policy:loaded``
  leaf, it writes a new ``policy:loaded`` leaf naming every pack and its hash: each change of
  the rules a node enforces is in the audit log.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Actor, CallContext
from broker.core.settings import ConfigurationError, Settings
from broker.oversight.models import AuditEvent
from broker.oversight.service import AuditKind, record_event
from policies.engine import PolicySet, load_policy
from policies.model import Party
from policies.packs import PACKS_DIR, Pack, PackError, pack_files
from policies.reference import ReferenceData, ReferenceDataError, load_reference_data

REFERENCE_FILES = ("jurisdictions.yaml", "groups.yaml", "treaties.yaml", "flagged.yaml")


def pack_hash(pack: Pack) -> str:
    """A pack's version: the hash of its canonical content (comments and layout do not count)."""
    return "sha256:" + hashlib.sha256(pack.canonical).hexdigest()


def reference_hash(reference: ReferenceData) -> str:
    """The version of the reference data: groups, treaties and flags change decisions too."""
    content = {
        "jurisdictions": {
            code: {
                "languages": sorted(j.languages),
                "mla_channels": sorted(j.mla_channels),
                "groups": sorted(j.groups),
                "flag_reason": j.flag_reason,
            }
            for code, j in sorted(reference.jurisdictions.items())
        },
        "instruments": [
            {
                "id": i.id,
                "parties": sorted(i.parties),
                "sides": None if i.sides is None else [sorted(side) for side in i.sides],
            }
            for i in reference.instruments
        ],
    }
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True, slots=True)
class NodePolicy:
    """The packs a node enforces and the reference data its contexts are built with."""

    policy: PolicySet
    reference: ReferenceData
    reference_hash: str
    _parties: dict[tuple[str, str, str, bool], Party] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def hash(self) -> str:
        return self.policy.hash

    def party(self, participant_id: str, kind: str, jurisdiction: str, active: bool) -> Party:
        """The ``Party`` of a participant, its groups from this policy's reference data
        (made once per participant state: ingress builds two per message)."""
        key = (participant_id, kind, jurisdiction, active)
        found = self._parties.get(key)
        if found is None:
            found = Party(
                id=participant_id,
                kind=kind,
                jurisdiction=jurisdiction,
                groups=self.reference.groups_for(jurisdiction),
                active=active,
            )
            self._parties[key] = found
        return found

    def is_shipped(self, pack: Pack) -> bool:
        return Path(pack.source).resolve().parent == PACKS_DIR.resolve()

    def packs(self) -> list[dict[str, Any]]:
        """Each pack's name, title, hash and origin (``shipped`` or ``deployment``)."""
        return [
            {
                "name": p.name,
                "title": p.title,
                "hash": pack_hash(p),
                "origin": "shipped" if self.is_shipped(p) else "deployment",
            }
            for p in self.policy.packs
        ]


PolicyContext = CallContext[NodePolicy | None, None]
"""The context of a service that asks the node's policy and has no configuration of its own
(consents, FIU matching): node, caller, policy, now."""


def _split(value: str, sep: str) -> list[str]:
    return [part.strip() for part in value.split(sep) if part.strip()]


def pack_paths(settings: Settings) -> list[Path]:
    """The pack files a node with these settings loads, in load order.

    Raises:
        ConfigurationError: a disabled pack is not a shipped pack, or a deployment path does
            not exist.
    """
    shipped = pack_files(None)
    disabled = set(_split(settings.policy_disabled, ","))
    unknown = sorted(disabled - {p.stem for p in shipped})
    if unknown:
        raise ConfigurationError(
            f"PALERMO_POLICY_DISABLED names {unknown[0]!r}, which is not a shipped pack "
            f"(shipped: {', '.join(p.stem for p in shipped)})"
        )
    extra = [Path(p) for p in _split(settings.policy_paths, os.pathsep)]
    missing = [p for p in extra if not p.exists()]
    if missing:
        raise ConfigurationError(f"PALERMO_POLICY_PATHS: {missing[0]} does not exist")
    return [p for p in shipped if p.stem not in disabled] + pack_files(extra)


def _fingerprint(paths: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """Each file with its size and modification time: a changed file is loaded again."""
    out = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            out.append((str(path), -1, -1))  # loading reports it
        else:
            out.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(out)


@functools.cache
def _load(
    paths: tuple[Path, ...],
    reference_dir: Path | None,
    fingerprint: tuple[tuple[str, int, int], ...],
) -> NodePolicy:
    reference = load_reference_data(reference_dir)
    return NodePolicy(load_policy(paths, reference), reference, reference_hash(reference))


def node_policy(settings: Settings) -> NodePolicy:
    """The node's policy, loaded and checked once per process for each configuration.

    Raises:
        ConfigurationError: a pack or the reference data is invalid (every problem is named),
            or a setting names something that does not exist.
    """
    try:
        paths = pack_paths(settings)
        reference_files = (
            [settings.reference_data_dir / name for name in REFERENCE_FILES]
            if settings.reference_data_dir is not None
            else []
        )
        return _load(
            tuple(paths),
            settings.reference_data_dir,
            _fingerprint([*paths, *reference_files]),
        )
    except PackError as exc:
        raise ConfigurationError(f"the policy packs do not load:\n{exc}") from exc
    except ReferenceDataError as exc:
        raise ConfigurationError(f"the reference data does not load: {exc}") from exc


@functools.cache
def shipped_policy() -> NodePolicy:
    """The shipped packs with the shipped reference data (a node without policy settings).

    Raises:
        ConfigurationError: only if a shipped pack is invalid (a packaging bug).
    """
    return node_policy(Settings(policy_paths="", policy_disabled="", reference_data_dir=None))


async def last_loaded(session: AsyncSession) -> tuple[str | None, str | None]:
    """The policy set hash and reference data hash of the newest ``policy:loaded`` leaf
    ((None, None) if there is none)."""
    leaf = (
        await session.execute(
            select(AuditEvent.leaf)
            .where(AuditEvent.kind == AuditKind.POLICY_LOADED.value)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if leaf is None:
        return None, None
    data = orjson.loads(leaf)
    return data.get("policy_pack"), data.get("reference_data")


async def record_policy_loaded(
    session: AsyncSession,
    *,
    node_id: str,
    policy: NodePolicy,
    actor: Actor | None,
) -> bool:
    """Write a ``policy:loaded`` leaf if the policy set or the reference data differs from the
    last one recorded; return whether it wrote one. Flushes; the caller commits."""
    if await last_loaded(session) == (policy.hash, policy.reference_hash):
        return False
    await record_event(
        session,
        kind=AuditKind.POLICY_LOADED,
        node=node_id,
        actor=actor,
        policy_pack=policy.hash,
        packs=[{k: p[k] for k in ("name", "hash", "origin")} for p in policy.packs()],
        reference_data=policy.reference_hash,
    )
    return True


__all__ = [
    "REFERENCE_FILES",
    "NodePolicy",
    "PolicyContext",
    "last_loaded",
    "node_policy",
    "pack_hash",
    "pack_paths",
    "record_policy_loaded",
    "reference_hash",
    "shipped_policy",
]
