"""The names ``broker.cases`` calls as ``messages.<name>``, kept while that package moves to
``broker.messages``' public surface (``broker/messages/__init__.py``); nothing else imports
this module. The services themselves live in ``ingress``, ``reading`` and ``receipts``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Caller, NodeContext
from broker.envelopes import dsse
from broker.envelopes.schemas import MessagePayload
from broker.messages import ingress
from broker.messages.ingress import Accepted, AcceptRequest, Refused, submit
from broker.messages.signing import Signed, verified_submission
from broker.oversight.service import AuditKind
from broker.policy.service import NodePolicy


async def accept(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    envelope: dsse.VerifiedEnvelope,
    payload: MessagePayload,
    kid_used: str,
    now: dt.datetime,
    policy: NodePolicy | None = None,
    known: Mapping[str, Any] | None = None,
    audit_kind: AuditKind | None = None,
    audit_fields: Mapping[str, Any] | None = None,
) -> Accepted | Refused:
    """``broker.messages.accept`` with the keywords ``broker.cases`` still passes; it is
    ``accept(..., signed=Signed(envelope, payload, kid_used), request=AcceptRequest(known=...,
    audit_kind=..., audit_fields=...))``."""
    return await ingress.accept(
        session,
        node=node,
        caller=caller,
        signed=Signed(envelope, payload, kid_used),
        now=now,
        policy=policy,
        request=AcceptRequest(
            known=known or {}, audit_kind=audit_kind, audit_fields=audit_fields or {}
        ),
    )


__all__ = ["Accepted", "Refused", "accept", "submit", "verified_submission"]
