"""Firing an event: planned against the table (state, side, roles, body), its guards
checked, signed (by the node with the caller's custodial key, or by the caller), decided by
policy, accepted and routed by ``messages.accept``, appended to ``case_events`` and folded into
the ``cases`` row, in the caller's one transaction. Also the payload a self-signing client
signs (``prepare_event``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases.config import CaseConfig, CaseContext
from broker.cases.fold import step
from broker.cases.models import Case, CaseEvent
from broker.cases.policy import known_fields
from broker.cases.service.events import (
    apply_effects,
    check_matches,
    details_of,
    envelope_draft,
    event_data,
    request_for,
)
from broker.cases.service.loading import Loaded, advance, case_for, load, side_of
from broker.cases.service.notices import (
    follow_case_retention,
    progress,
    record_notice,
    reschedule,
)
from broker.cases.service.reading import allowed_events, case_facts
from broker.cases.service.request import validated
from broker.cases.workflow import Side, Transition
from broker.core.context import Caller
from broker.core.db import utcnow
from broker.core.errors import Conflict, Forbidden, InvalidState, SchemaViolation
from broker.core.ids import uuid7
from broker.core.settings import ConfigurationError
from broker.envelopes.schemas import MessagePayload
from broker.messages.models import Message
from broker.oversight.service import AuditKind


@dataclass(frozen=True, slots=True)
class Fired:
    """An accepted event: the case after it, the event row, the countersigned envelope, and
    the node's automatic reply when the event asked for one (a progress query)."""

    case: Case
    event: CaseEvent
    envelope: dict[str, Any] | None
    reply: CaseEvent | None = None
    duplicate: bool = False


async def fire_event(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    case_id: str,
    event: str | None,
    body: Any,
    envelope: Any,
) -> Fired | messages.Refused:
    """Fire ``event`` with ``body`` (the node signs with the caller's custodial key), or
    submit a self-signed ``envelope`` whose payload body is ``{"event", "workflow", "seq",
    "from_state", "data"}``. Flushes; the caller commits (also after a refusal, to keep its
    leaf). The same envelope again returns the first answer.

    Raises NotFound; InvalidState (the event is not allowed in the case's state); Forbidden
    (wrong side or role); SchemaViolation (body, or an envelope that does not match the case);
    GuardError, GuardForbiddenError, GuardConflictError (a guard, with its citation);
    Conflict (the case moved on since the envelope was signed); the envelope errors of
    ``messages.submit``.
    Returns ``messages.Refused`` when policy denies the event.
    """
    case = await case_for(session, caller=ctx.caller, case_id=case_id, lock=True)
    loaded = await load(session, case)
    return await fire(
        session, ctx=ctx, loaded=loaded, event=event, data=body, envelope=envelope, new_case=False
    )


def _envelope_event(payload: MessagePayload) -> tuple[str, Any, int, str]:
    b = payload.body
    if not isinstance(b.get("event"), str) or not isinstance(b.get("seq"), int):
        raise SchemaViolation(
            'a case event envelope has body {"event", "workflow", "seq", "from_state", "data"}',
            field="payload.body",
        )
    return b["event"], b.get("data", {}), b["seq"], str(b.get("from_state"))


def _not_allowed(
    loaded: Loaded, caller: Caller, event: str, now: dt.datetime | None = None
) -> InvalidState:
    """The answer to an event the table does not allow now: the rule that governs where it
    fires, with its citation, when the law gives one (``Transition.prerequisite``), the
    states it fires from, and the events this caller may fire instead (its side and roles,
    four eyes applied, as ``allowed_events`` tells)."""
    wf, state = loaded.workflow, loaded.projection.state
    allowed = list(dict.fromkeys(t.event for t in allowed_events(loaded, caller, now)))
    may = f"you may fire: {', '.join(allowed)}" if allowed else "you may fire no event now"
    if event not in wf.events:
        return InvalidState(
            f"{event!r} is not an event of the {wf.name} workflow ({may})",
            allowed_events=allowed,
        )
    rows = [t for t in wf.transitions if t.event == event]
    sources = [s for s in wf.states if any(s in t.sources for t in rows)]
    rule = next((t.prerequisite for t in rows if t.prerequisite is not None), None)
    because = f": {rule.text} ({rule.citation})" if rule is not None else ""
    extra = {"rule": rule.text, "citation": rule.citation} if rule is not None else {}
    return InvalidState(
        f"{event} is not allowed in state {state} of the {wf.name} workflow{because}; it "
        f"fires from {', '.join(sources)} ({may})",
        state=state,
        fires_from=sources,
        allowed_events=allowed,
        **extra,
    )


@dataclass(slots=True)
class _Plan:
    """An event checked and ready to sign: its row of the table, the side firing it, its
    validated body, the request it carries, and the caller's signature if self-signed."""

    transition: Transition
    side: Side
    body: BaseModel
    request: BaseModel | None
    signed: messages.Signed | None


async def _plan(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    loaded: Loaded,
    event: str | None,
    data: Any,
    envelope: Any,
    new_case: bool,
) -> _Plan | Fired:
    node, caller = ctx.node, ctx.caller
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    signed: messages.Signed | None = None
    if envelope is not None:
        if event is not None or data is not None:
            raise SchemaViolation("give either an envelope or an event with its body", field="$")
        signed = await messages.verified_submission(
            session, node=node, caller=caller, data=envelope, now=utcnow()
        )
        payload = signed.payload
        previous = (
            await session.scalars(select(CaseEvent).where(CaseEvent.message_id == str(payload.id)))
        ).first()
        if previous is not None:
            if previous.case_id != case.id:
                raise Conflict(f"this envelope carried an event of case {previous.case_id}")
            return Fired(case, previous, None, duplicate=True)
        event, data, seq, from_state = _envelope_event(payload)
        if seq != p.seq + 1 or from_state != p.state:
            raise Conflict(
                f"the case moved on: it is in state {p.state} after event {p.seq}; sign "
                f"seq {p.seq + 1} from_state {p.state}",
                state=p.state,
                seq=p.seq,
            )
    if event is None:
        raise SchemaViolation("name the event to fire", field="event")
    t = wf.transition(p.state, event)
    if t is None:
        raise _not_allowed(loaded, caller, event, ctx.now)
    side = Side.REQUESTING if new_case else side_of(case, caller.participant_id)
    if side is None or not t.fired_by(side):
        raise Forbidden(
            f"{event} is fired by the {t.side.value} side; you are the "
            f"{side.value if side else 'no'} side of this case",
        )
    if caller.roles.isdisjoint(t.roles):
        raise Forbidden(f"{event} needs one of the roles {sorted(t.roles)}")
    body = validated(t.body, data, "body")
    return _Plan(t, side, body, request_for(node, case, t, body), signed)


async def _message_consents(
    session: AsyncSession, config: CaseConfig, loaded: Loaded, plan: _Plan, now: dt.datetime
) -> tuple[Mapping[str, Any], ...]:
    """The message door's consents for the parent's material, for an event with a guard that
    reads them (a consent thread asks only for what is not on record through either door).
    Raises ConfigurationError when the process was made without the lookup: the guard would
    otherwise pass what it cannot see."""
    if loaded.parent is None or not any(g.reads_message_consents for g in plan.transition.guards):
        return ()
    if config.message_consents is None:
        raise ConfigurationError("this process cannot look up the consents on record")
    return tuple(await config.message_consents(session, case_id=loaded.parent.id, now=now))


def _check_guards(
    loaded: Loaded,
    plan: _Plan,
    caller: Caller,
    now: dt.datetime,
    message_consents: tuple[Mapping[str, Any], ...] = (),
) -> None:
    """Raises GuardError (or its 403 and 409 kinds) naming the guard and its citation."""
    facts = case_facts(
        loaded,
        event=plan.transition.event,
        side=plan.side,
        body=plan.body,
        caller=caller,
        now=now,
        message_consents=message_consents,
    )
    for guard in plan.transition.guards:
        failure = guard.failure(facts)
        if failure is not None:
            raise failure.error()


async def fire(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    loaded: Loaded,
    event: str | None,
    data: Any,
    envelope: Any,
    new_case: bool,
) -> Fired | messages.Refused:
    node, caller, config, now = ctx.node, ctx.caller, ctx.config, ctx.now
    planned = await _plan(
        session,
        ctx=ctx,
        loaded=loaded,
        event=event,
        data=data,
        envelope=envelope,
        new_case=new_case,
    )
    if isinstance(planned, Fired):
        return planned
    _check_guards(
        loaded, planned, caller, now, await _message_consents(session, config, loaded, planned, now)
    )
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    t, side, body, request = planned.transition, planned.side, planned.body, planned.request
    if new_case:
        case.purpose = getattr(body, "purpose", None) or case.purpose
    seq = p.seq + 1
    recipient = _recipient(loaded, t, side, caller, new_case, body)
    draft = envelope_draft(loaded, t, event_data(body, request), body, request, recipient, seq)
    event_id = str(uuid7())
    to_state = t.target_from(p.state, p.consulted_from)
    accept_request = messages.AcceptRequest(
        known=known_fields(
            case=case, projection=p, event=t.policy_event or t.event, body=body, request=request
        ),
        # The workflow's own guards decide who fires the event (the four-eyes guard carries
        # out P1's require_approval on transmit); an event is not held in the message queue.
        approved_by_workflow=True,
        audit_kind=AuditKind(t.audit_kind),
        audit_fields={
            "workflow": wf.name,
            "case_event": t.event,
            "seq": seq,
            "from_state": p.state,
            "to_state": to_state,
            "case_event_id": event_id,
            "side": side.value,
        },
    )
    outcome: messages.Accepted | messages.Refused
    if planned.signed is None:
        outcome = await messages.sign_and_accept(
            session, ctx=ctx, draft=draft, request=accept_request
        )
    else:
        check_matches(planned.signed.payload, draft)
        outcome = await messages.accept(
            session, ctx=ctx, signed=planned.signed, request=accept_request
        )
    if isinstance(outcome, messages.Refused):
        return outcome
    if new_case:
        session.add(case)
        await session.flush()
    message = await session.get(Message, outcome.message_id)
    assert message is not None
    details = details_of(t, body)
    await session.execute(
        insert(CaseEvent),
        [
            {
                "event_id": event_id,
                "case_id": case.id,
                "seq": seq,
                "event": t.event,
                "from_state": p.state,
                "to_state": to_state,
                "side": side.value,
                "actor_participant": caller.participant_id,
                "actor_account": caller.account_id,
                "message_id": outcome.message_id,
                "envelope_sha256": message.envelope_sha256,
                "at": now,
                "details": details,
                "policy_pack": message.policy_hash,
                "policy_rules": list(message.policy_rules),
                "node_signature": None,
            }
        ],
    )
    ev = (await session.scalars(select(CaseEvent).where(CaseEvent.event_id == event_id))).one()
    apply_effects(node, loaded, t, request, details, new_case)
    case.head_message_id = outcome.message_id
    loaded.events.append(ev)
    loaded.projection = step(wf, p, ev)
    advance(case, loaded.projection, now)
    reply = None
    if t.triggers_progress_reply:
        reply = await record_notice(
            session,
            node=node,
            loaded=loaded,
            notice="progress_reply",
            key=str(seq),
            detail=progress(loaded, config, now),
            now=now,
        )
    reschedule(loaded, config, now)
    await follow_case_retention(session, loaded)
    return Fired(case, ev, outcome.envelope, reply)


def _recipient(
    loaded: Loaded, t: Transition, side: Side, caller: Caller, new_case: bool, body: BaseModel
) -> str:
    """The other side once the case is shared (or by the event that shares it); before, the
    caller's own participant: drafting and vetting stay inside it. An addressed event goes to
    the participant its body names (the policy decides whether it may)."""
    case = loaded.case
    addressee = getattr(body, "recipient", None)
    if t.addressed and isinstance(addressee, str):
        return addressee
    if not (loaded.projection.shared or t.event == loaded.workflow.sharing_event or new_case):
        return caller.participant_id
    return case.requested_id if side is Side.REQUESTING else case.requesting_id


async def prepare_event(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    case_id: str,
    event: str | None,
    body: Any,
) -> tuple[dict[str, Any], bool]:
    """The payload a self-signing client signs to fire ``event`` with ``body`` now, without
    ``id``, ``sender`` and ``created_at`` (the client adds them), and whether it carries the
    case's stored request (``transmit``), which makes the draft a consultation to log.
    Nothing is stored. Raises what ``fire_event`` raises before signing."""
    caller = ctx.caller
    case = await case_for(session, caller=caller, case_id=case_id)
    loaded = await load(session, case)
    planned = await _plan(
        session,
        ctx=ctx,
        loaded=loaded,
        event=event,
        data=body,
        envelope=None,
        new_case=False,
    )
    assert isinstance(planned, _Plan)
    _check_guards(loaded, planned, caller, ctx.now)
    t, request = planned.transition, planned.request
    recipient = _recipient(loaded, t, planned.side, caller, False, planned.body)
    data = event_data(planned.body, request)
    draft = envelope_draft(
        loaded, t, data, planned.body, request, recipient, loaded.projection.seq + 1
    )
    return draft, request is not None
