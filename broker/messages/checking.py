"""The dry run of ingress: the decision a draft would meet if it were sent now.

``check_draft`` validates the draft as ``sign_and_accept`` does, reads both parties' facts
as ``accept`` does and asks the same ``decide``. Invariants: it signs nothing, stores
nothing and writes no audit leaf; the decision is the one a send of the same draft under
the same policy and participant facts would get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core.context import Caller
from broker.core.db import utcnow
from broker.core.errors import UnknownRecipient
from broker.core.ids import uuid7
from broker.envelopes.schemas import DraftPayload, MessagePayload
from broker.messages.keys import party_facts
from broker.messages.policy import decide
from broker.messages.signing import schema_error
from broker.policy.service import NodePolicy
from policies.model import Decision


async def check_draft(
    session: AsyncSession,
    *,
    caller: Caller,
    draft: Mapping[str, Any],
    policy: NodePolicy | None,
) -> Decision:
    """The policy decision ``sign_and_accept`` would reach for ``draft`` from the caller's
    participant. Reads only.

    Raises SchemaViolation (the draft does not validate) and UnknownRecipient.
    """
    try:
        parsed = DraftPayload.model_validate(dict(draft))
        payload = MessagePayload.model_validate(
            {
                **parsed.model_dump(mode="json", exclude_none=True),
                "id": str(uuid7()),
                "sender": caller.participant_id,
                "created_at": utcnow().isoformat(),
            }
        )
    except ValidationError as exc:
        raise schema_error(exc, "draft") from exc
    parties = await party_facts(session, (payload.sender, payload.recipient))
    if payload.recipient not in parties:
        raise UnknownRecipient(
            f"no participant {payload.recipient} is registered", field="payload.recipient"
        )
    return decide(payload, parties[payload.sender], parties[payload.recipient], policy=policy)
