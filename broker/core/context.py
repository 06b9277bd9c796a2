"""What a request or task knows about the node and its caller, passed to services: the
node (``NodeContext``), the authenticated caller (``Caller``), who an audit leaf names as the
actor (``Actor``), and the one context object a service call takes (``CallContext``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

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
    # The retention of a message outside a case without a P17 obligation (days).
    retention_message_days: int = 1826
    # The days a ``follow_up`` obligation gives its tracked item before the clocks remind.
    follow_up_days: int = 7


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, as audit leaves record it: a participant and an account, either of
    which may be absent (the node itself has neither; the operator at the CLI has an account
    ``cli:<user>`` and no participant; a recipient's system answering a push has no account).
    """

    participant_id: str | None
    account_id: str | None = None

    def to_json(self) -> dict[str, str | None]:
        """The ``actor`` object of an audit leaf: ``{"participant": ..., "account": ...}``."""
        return {"participant": self.participant_id, "account": self.account_id}


NO_ACTOR = Actor(None, None)
"""The node acting on its own (a delivery, a timer, a draft it opens after a match)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated account: who is calling, for which participant, with which roles."""

    account_id: str
    participant_id: str
    roles: frozenset[str]
    kind: str
    # A person on a temporary password the node made: only the password change is open.
    password_change_required: bool = False

    def actor(self) -> Actor:
        return Actor(self.participant_id, self.account_id)

    def has_any(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


PolicyT_co = TypeVar("PolicyT_co", covariant=True)
ConfigT_co = TypeVar("ConfigT_co", covariant=True)


@dataclass(frozen=True, slots=True)
class CallContext(Generic[PolicyT_co, ConfigT_co]):
    """What travels together through a service call: the node, the caller, the node's policy,
    the domain's configuration and the time of the call. A view or task builds it once per
    request and passes it instead of five parameters.

    ``broker.core`` imports no domain, so the policy and configuration types are parameters:
    ``broker.cases.config.CaseContext`` is ``CallContext[NodePolicy | None, CaseConfig]`` and
    ``broker.policy.service.PolicyContext`` is ``CallContext[NodePolicy | None, None]``. Both
    parameters are covariant, so a case context can be given where a policy context is asked.
    Build one with ``CallContext(...)`` itself: an alias such as ``CaseContext`` is for
    annotations only (calling a subscripted frozen dataclass fails at run time).
    """

    node: NodeContext
    caller: Caller
    policy: PolicyT_co
    config: ConfigT_co
    now: dt.datetime


class CallerLookup(Protocol):
    """Finds the active account behind a verified token, as a Caller, or None (also when
    the token was issued before the account's tokens were revoked).

    ``broker.http`` resolves callers through the lookup the application was made with
    (``app.state.callers``, set by ``broker.app``), so the HTTP layer does not import the
    accounts domain that itself serves routes through it.
    """

    async def __call__(
        self, session: AsyncSession, account_id: str, *, issued_at_ms: int
    ) -> Caller | None: ...


def node_context(s: Settings) -> NodeContext:
    """The node context of a process, from its settings. Raises ConfigurationError."""
    return NodeContext(
        node_id=s.node_id,
        signer=Signer(s.node_signing_seed),
        master_key=s.master_key_bytes,
        clock_skew_seconds=s.clock_skew_seconds,
        max_payload_bytes=s.max_payload_bytes,
        retention_message_days=s.retention_message_days,
        follow_up_days=s.follow_up_days,
    )
