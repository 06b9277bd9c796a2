"""The adapter contract: the one Protocol every transport in ``adapters/`` implements.

It lives with the adapters (``broker.delivery`` imports it; the adapters import nothing of
delivery, so the two packages have no cycle) and imports only the envelope, the error tree
and the crypto core, never the database. What it guarantees:

- an adapter gets an ``Outgoing``: the message id, its parties and the node-countersigned
  envelope, already decrypted; it answers with a ``DeliveryResult``;
- an adapter never raises for a delivery that failed: it returns ``DeliveryResult.retry``
  (a transient failure: the node retries with backoff) or ``DeliveryResult.reject`` (the
  receiver refused it for good: the node dead-letters at once). An exception out of
  ``deliver`` is a bug, and the node records it as a transient failure;
- an adapter's configuration is checked by its spec's ``check`` (and ``probe``) before the
  node starts and when an operator sets it, and raises ``AdapterConfigError`` naming the
  field;
- receivers deduplicate by the envelope's message id, so delivering twice stores once;
- an adapter that can carry many messages in one call (``BatchAdapter``: ``peer``) answers
  ``deliver_many`` with one ``DeliveryResult`` per message, in order, as ``deliver`` would
  have answered for each; the node groups due messages by ``batch_key`` (the same receiver).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from broker.core.crypto import Signer
from broker.core.errors import SchemaViolation
from broker.envelopes.dsse import VerifiedEnvelope


class AdapterConfigError(SchemaViolation):
    """An adapter name or configuration the node cannot use."""

    slug, title = "adapter-config", "The adapter configuration is not usable"


@dataclass(frozen=True, slots=True)
class DestinationRules:
    """What this node allows its adapters to reach. ``allow_private_addresses`` lifts the
    address rule (``PALERMO_WEBHOOK_ALLOW_PRIVATE``); ``node_directories`` are the node's own
    (its data directory: no drop there) and ``node_trees`` its own with all below them (its
    evidence directory)."""

    allow_private_addresses: bool = False
    node_directories: tuple[Path, ...] = ()
    node_trees: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """What an adapter may know of the node that runs it: its id and its signing key (for
    HTTP Message Signatures and the countersignature the peer checks), and the destination
    rules it delivers under."""

    node_id: str
    signer: Signer
    timeout_seconds: float = 10.0
    rules: DestinationRules = DestinationRules()
    # The most messages, and bytes, one batched request carries (PALERMO_FEDERATION_BATCH_*).
    batch_max_items: int = 100
    batch_max_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to deliver. ``envelope`` is the node-countersigned DSSE envelope the node
    stored at acceptance (the sender's signature first, the node's last), its
    countersignature verified when the node opened it: a ``VerifiedEnvelope``, which only
    signature verification or the node's own signing makes."""

    message_id: str
    message_type: str
    sender: str
    recipient: str
    attempt: int
    envelope: VerifiedEnvelope

    @property
    def envelope_sha256(self) -> str:
        return self.envelope.digest


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    delivered: bool
    permanent: bool = False
    error: str | None = None
    # Metadata worth keeping with the attempt (HTTP status, remote key id, file name...).
    detail: dict[str, Any] = field(default_factory=dict)
    # A signed ``receipt`` envelope (JSON bytes) the receiver returned; the node verifies it
    # against the recipient's registered keys before it records it.
    receipt: bytes | None = None

    @classmethod
    def ok(cls, *, receipt: bytes | None = None, **detail: Any) -> DeliveryResult:
        return cls(True, detail=detail, receipt=receipt)

    @classmethod
    def retry(cls, error: str, **detail: Any) -> DeliveryResult:
        return cls(False, error=error[:500], detail=detail)

    @classmethod
    def reject(cls, error: str, **detail: Any) -> DeliveryResult:
        return cls(False, permanent=True, error=error[:500], detail=detail)


class Adapter(Protocol):
    """A transport to a recipient. ``pull`` adapters (the inbox) are completed by the node
    itself, which writes the recipient's inbox under its lock; ``deliver`` is for push."""

    name: str
    pull: bool

    async def deliver(self, item: Outgoing) -> DeliveryResult: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class BatchAdapter(Adapter, Protocol):
    """An adapter that delivers many messages to one receiver in one call. Messages whose
    adapters share a ``batch_key`` go to the same receiver and may be grouped, up to
    ``batch_max_items`` per call; ``deliver_many`` never raises for a failed delivery and
    returns one result per item, in order."""

    batch_key: str
    batch_max_items: int

    async def deliver_many(self, items: Sequence[Outgoing]) -> list[DeliveryResult]: ...


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """An adapter as the registry knows it: ``check`` validates a configuration (raises
    AdapterConfigError) under the node's destination rules and returns it normalised;
    ``build`` makes the adapter."""

    name: str
    summary: str
    check: Callable[[Mapping[str, Any], DestinationRules], dict[str, Any]]
    build: Callable[[dict[str, Any], NodeIdentity], Adapter]
    # Checks of the world outside the configuration (a directory exists...), run when the
    # node starts and when an operator sets it, not before each delivery: there a missing
    # directory is a transient failure, retried. Raises AdapterConfigError.
    probe: Callable[[dict[str, Any]], None] | None = None
