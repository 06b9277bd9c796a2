"""What a request or task knows about the node and its caller, passed to services."""

from __future__ import annotations

from dataclasses import dataclass

from broker.core.crypto import Signer
from broker.core.settings import Settings


@dataclass(frozen=True, slots=True)
class NodeContext:
    """The node's identity and keys, loaded once per process."""

    node_id: str
    signer: Signer
    master_key: bytes
    clock_skew_seconds: int
    max_payload_bytes: int


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated account: who is calling, for which participant, with which roles."""

    account_id: str
    participant_id: str
    roles: frozenset[str]
    kind: str

    def actor(self) -> dict[str, str | None]:
        return {"participant": self.participant_id, "account": self.account_id}

    def has_any(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


def node_context(s: Settings) -> NodeContext:
    """The node context of a process, from its settings. Raises ConfigurationError."""
    return NodeContext(
        node_id=s.node_id,
        signer=Signer(s.node_signing_seed),
        master_key=s.master_key_bytes,
        clock_skew_seconds=s.clock_skew_seconds,
        max_payload_bytes=s.max_payload_bytes,
    )
