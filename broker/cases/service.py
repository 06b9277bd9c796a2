"""Cases: open one, fire its events, read and list them.

Invariants:
- A case's state changes only through an accepted event: a signed envelope of the acting
  participant (the node signs with the custodial key of a person's participant), decided by
  the policy engine with the case's context (``broker.cases.policy``), stored and routed by
  ``messages.accept``, appended to ``case_events``, and folded into the ``cases`` row, all in
  the caller's one transaction. Timers of the node add notices and the retention expiry,
  signed by the node (``broker.cases.scheduler``).
- One audit leaf per event: the acceptance leaf of the envelope is the event's leaf (kind
  ``case:transition`` or ``consent:*``), naming the case, the event, both states, the
  sequence number and the policy decision. A refused event stores nothing but the
  ``message:refused`` leaf, which names the case and the event too.
- The event is routed to the other side once the case is shared (``transmit``, ``submit``,
  a thread's opening event); before, drafting and vetting stay inside the requesting
  participant (the envelope goes to the participant itself). Both sides see the same history
  from the moment the case is shared.
- A caller sees a case only as one of its two participants (the requested one only once it
  is shared); a confidential case (18(20)) only as a person with a case-handling role.
- Services flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy import and_, false, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases import bodies
from broker.cases.clocks import Deadline, Due, deadlines, due_actions
from broker.cases.config import CaseConfig
from broker.cases.fold import Projection, projection_from, projection_json, step
from broker.cases.guards import EvidenceFacts, Facts
from broker.cases.models import Case, CaseEvent, EvidenceFile
from broker.cases.policy import envelope_metadata, known_fields, subjects
from broker.cases.tables import CHILD_WORKFLOWS, WORKFLOWS
from broker.cases.workflow import START, Side, Transition, Workflow
from broker.core import crypto
from broker.core.context import Caller, NodeContext
from broker.core.db import utcnow
from broker.core.errors import (
    Conflict,
    Forbidden,
    InvalidState,
    NotFound,
    SchemaViolation,
    UnknownRecipient,
)
from broker.core.ids import uuid7
from broker.envelopes.schemas import DraftPayload, MessagePayload
from broker.messages import service as messages
from broker.messages.models import Message
from broker.oversight.service import AuditKind, record_event
from broker.participants.models import Participant
from broker.policy.service import NodePolicy
from policies.model import Consent

CASE_HANDLING_PEOPLE = frozenset({"officer", "supervisor"})


# --- loading and visibility ------------------------------------------------------------------


@dataclass(slots=True)
class Loaded:
    """A case with what reading it or firing an event needs."""

    case: Case
    workflow: Workflow
    projection: Projection
    events: list[CaseEvent]
    evidence: list[EvidenceFile]
    parent: Case | None

    @property
    def delivered(self) -> set[str]:
        return {str(f) for ev in self.events for f in ev.details.get("evidence", ())}

    @property
    def drafters(self) -> frozenset[str]:
        ids = {self.case.opened_by}
        ids |= {
            ev.actor_account
            for ev in self.events
            if ev.actor_account and (t := _fired(self.workflow, ev)) is not None and t.drafting
        }
        return frozenset(ids)


def _fired(wf: Workflow, ev: CaseEvent) -> Transition | None:
    """The row of the table an event of the history was fired by (None for a notice)."""
    return wf.transition(ev.from_state, ev.event)


def side_of(case: Case, participant_id: str) -> Side | None:
    if participant_id == case.requesting_id:
        return Side.REQUESTING
    if participant_id == case.requested_id:
        return Side.REQUESTED
    return None


def can_see(case: Case, caller: Caller) -> bool:
    side = side_of(case, caller.participant_id)
    if side is None or (side is Side.REQUESTED and case.shared_at is None):
        return False
    return not (case.confidential and caller.roles.isdisjoint(CASE_HANDLING_PEOPLE))


def projection_of(case: Case) -> Projection:
    return projection_from(case.state, case.seq, case.projection)


async def _case(session: AsyncSession, case_id: str, *, lock: bool = False) -> Case | None:
    try:
        uuid.UUID(case_id)
    except ValueError:
        return None
    stmt = select(Case).where(Case.id == case_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def load(session: AsyncSession, case: Case) -> Loaded:
    events = list(
        (
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
            )
        ).all()
    )
    evidence = list(
        (
            await session.scalars(
                select(EvidenceFile)
                .where(EvidenceFile.case_id == case.id)
                .order_by(EvidenceFile.created_at, EvidenceFile.id)
            )
        ).all()
    )
    parent = await _case(session, case.parent_id) if case.parent_id else None
    return Loaded(case, WORKFLOWS[case.workflow], projection_of(case), events, evidence, parent)


async def case_for(
    session: AsyncSession, *, caller: Caller, case_id: str, lock: bool = False
) -> Case:
    """The case, if the caller may see it. Raises NotFound (also for cases of others)."""
    case = await _case(session, case_id, lock=lock)
    if case is None or not can_see(case, caller):
        raise NotFound(f"no case {case_id}")
    return case


# --- the request, kept encrypted -------------------------------------------------------------


def seal_request(node: NodeContext, request: BaseModel) -> tuple[bytes, bytes]:
    key = crypto.random_key()
    plain = orjson.dumps(request.model_dump(mode="json", exclude_none=True))
    return crypto.secretbox_encrypt(key, plain), crypto.secretbox_encrypt(node.master_key, key)


def open_request(node: NodeContext, case: Case) -> BaseModel | None:
    """The case's request (drafted, vetted or received), or None once erased."""
    model = WORKFLOWS[case.workflow].request_model
    if model is None or case.request_ciphertext is None or case.request_key is None:
        return None
    key = crypto.secretbox_decrypt(node.master_key, case.request_key)
    return model.model_validate_json(crypto.secretbox_decrypt(key, case.request_ciphertext))


def _apply_request(case: Case, request: BaseModel) -> None:
    """Copy the request's metadata onto the case row (never its free text)."""
    get = request.__dict__.get
    case.legal_basis = get("legal_basis")
    case.purpose = get("purpose")
    case.language = get("language")
    case.channel = get("channel")
    case.transfer_basis = get("transfer_basis")
    case.urgent = bool(get("urgent", False))
    case.confidential = bool(get("confidential", False))
    case.extraordinary_costs = bool(get("extraordinary_costs", False))
    case.initiated_by = str(get("initiated_by", "written"))
    case.deadline = get("deadline")
    case.deadline_reason = get("deadline_reason")
    case.fields = sorted(bodies.filled_fields(request))
    case.assistance_types = sorted(get("assistance_types", None) or [])
    persons = get("persons_concerned", None) or get("subjects", None) or []
    case.data_subject_categories = sorted(bodies.subject_categories(persons))
    terms: dict[str, Any] = {}
    for source, target in (
        ("named_recipients", "permitted_recipients"),
        ("permitted_recipients", "permitted_recipients"),
        ("permitted_purposes", "permitted_purposes"),
    ):
        values = get(source) or []
        if values:
            terms[target] = list(values)
    case.terms = terms


def _validate(model: type[BaseModel], data: Any, prefix: str) -> BaseModel:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(p) for p in (prefix, *err["loc"]) if p != ""),
                "message": err["msg"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise SchemaViolation(
            f"{errors[0]['field']}: {errors[0]['message']}", errors=errors
        ) from exc


# --- opening ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fired:
    """An accepted event: the case after it, the event row, the countersigned envelope, and
    the node's automatic reply when the event asked for one (a progress query)."""

    case: Case
    event: CaseEvent
    envelope: dict[str, Any] | None
    reply: CaseEvent | None = None
    duplicate: bool = False


async def _participant(session: AsyncSession, participant_id: str, field: str) -> Participant:
    found = await session.get(Participant, participant_id)
    if found is None:
        raise UnknownRecipient(f"no participant {participant_id} is registered", field=field)
    return found


async def open_case(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    policy: NodePolicy | None,
    config: CaseConfig,
    workflow: str,
    counterpart: str | None,
    request: Any,
    parent_id: str | None,
    event: str | None,
    body: Any,
    envelope: Any,
    now: dt.datetime,
) -> Case | Fired | messages.Refused:
    """Open a case. A request workflow (MLA, FIU request, disclosure) opens a draft with the
    request as given (``case:opened`` leaf); a thread (consent, feedback) opens by firing its
    opening event on a case the caller is a party of, so it returns like ``fire_event``.

    Raises NotFound (parent), SchemaViolation, UnknownRecipient, Conflict (counterpart is
    yourself), Forbidden (role), InvalidState (parent not shared), and what ``fire_event``
    raises.
    """
    wf = WORKFLOWS.get(workflow)
    if wf is None:
        raise SchemaViolation(
            f"unknown workflow {workflow!r} (one of {', '.join(WORKFLOWS)})", field="workflow"
        )
    if workflow in CHILD_WORKFLOWS:
        return await _open_thread(
            session,
            node=node,
            caller=caller,
            policy=policy,
            config=config,
            wf=wf,
            parent_id=parent_id,
            event=event,
            body=body,
            envelope=envelope,
            now=now,
        )
    if caller.roles.isdisjoint({"officer", "supervisor", "system"}):
        raise Forbidden("opening a case needs a case-handling role")
    if counterpart is None:
        raise SchemaViolation("name the counterpart participant", field="counterpart")
    if counterpart == caller.participant_id:
        raise Conflict("a case is between two participants: the counterpart is yourself")
    if parent_id is not None or event is not None or envelope is not None:
        raise SchemaViolation(
            f"a {workflow} case opens as a draft: give workflow, counterpart and request",
            field="parent_id" if parent_id else "event",
        )
    await _participant(session, counterpart, "counterpart")
    assert wf.request_model is not None
    parsed = _validate(wf.request_model, request, "request")
    return await _open(
        session,
        node=node,
        wf=wf,
        requesting_id=caller.participant_id,
        requested_id=counterpart,
        opened_by=caller.account_id,
        request=parsed,
        origin=None,
        actor=caller.actor(),
        now=now,
    )


async def open_draft_for(
    session: AsyncSession,
    *,
    node: NodeContext,
    requesting_id: str,
    requested_id: str,
    opened_by: str,
    workflow: str,
    request: BaseModel,
    origin: str,
    now: dt.datetime,
) -> Case:
    """Open a draft the node makes itself (a matching hit opens a draft FIU request)."""
    return await _open(
        session,
        node=node,
        wf=WORKFLOWS[workflow],
        requesting_id=requesting_id,
        requested_id=requested_id,
        opened_by=opened_by,
        request=request,
        origin=origin,
        actor={"participant": None, "account": None},
        now=now,
    )


async def _open(
    session: AsyncSession,
    *,
    node: NodeContext,
    wf: Workflow,
    requesting_id: str,
    requested_id: str,
    opened_by: str,
    request: BaseModel,
    origin: str | None,
    actor: dict[str, str | None],
    now: dt.datetime,
) -> Case:
    """A new case in its workflow's initial state, its request sealed, and its
    ``case:opened`` leaf (with ``origin`` when the node opened it itself)."""
    case = Case(
        id=str(uuid7()),
        workflow=wf.name,
        case_type=next(iter(wf.case_types)),
        parent_id=None,
        requesting_id=requesting_id,
        requested_id=requested_id,
        opened_by=opened_by,
        opened_at=now,
        updated_at=now,
        state=wf.initial,
        seq=0,
        head_message_id=None,
        shared_at=None,
        projection=projection_json(Projection(state=wf.initial)),
        next_due_at=None,
        next_check_at=None,
        origin=origin,
    )
    _apply_request(case, request)
    case.request_ciphertext, case.request_key = seal_request(node, request)
    session.add(case)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.CASE_OPENED,
        node=node.node_id,
        actor=actor,
        participant_id=requesting_id,
        at=now,
        case_id=case.id,
        workflow=wf.name,
        requesting=requesting_id,
        requested=requested_id,
        state=case.state,
        fields=case.fields,
        **({"origin": origin} if origin is not None else {}),
    )
    return case


async def _open_thread(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    policy: NodePolicy | None,
    config: CaseConfig,
    wf: Workflow,
    parent_id: str | None,
    event: str | None,
    body: Any,
    envelope: Any,
    now: dt.datetime,
) -> Fired | messages.Refused:
    if parent_id is None:
        raise SchemaViolation(
            f"a {wf.name} thread opens under a case: give parent_id", field="parent_id"
        )
    parent = await case_for(session, caller=caller, case_id=parent_id, lock=True)
    if parent.workflow not in wf.parents:
        raise SchemaViolation(
            f"a {wf.name} thread opens under a case of workflow "
            f"{', '.join(sorted(wf.parents))}, not {parent.workflow}",
            field="parent_id",
        )
    if parent.shared_at is None:
        raise InvalidState(f"the {parent.workflow} case is not shared with the other side yet")
    if parent.state in WORKFLOWS[parent.workflow].erased_states:
        raise InvalidState("the case's content was erased at the end of retention")
    me = side_of(parent, caller.participant_id)
    assert me is not None
    other = parent.requested_id if me is Side.REQUESTING else parent.requesting_id
    case = Case(
        id=str(uuid7()),
        workflow=wf.name,
        case_type=parent.case_type,
        parent_id=parent.id,
        requesting_id=caller.participant_id,
        requested_id=other,
        opened_by=caller.account_id,
        opened_at=now,
        updated_at=now,
        state=START,
        seq=0,
        head_message_id=parent.head_message_id,
        shared_at=None,
        projection=projection_json(Projection(state=START)),
        legal_basis=parent.legal_basis,
        purpose=parent.purpose,
        language=parent.language,
        channel=parent.channel,
        transfer_basis=parent.transfer_basis,
        urgent=False,
        confidential=parent.confidential,
        extraordinary_costs=False,
        initiated_by="written",
        deadline=None,
        deadline_reason=None,
        fields=[],
        assistance_types=[],
        data_subject_categories=[],
        terms={},
        request_ciphertext=None,
        request_key=None,
        next_due_at=None,
        next_check_at=None,
        origin=None,
    )
    if event is None and envelope is None:
        fitting = [
            t
            for t in wf.opening_events
            if all(g.failure(_parent_facts(parent, t)) is None for g in t.guards if g.on_parent)
        ]
        if len(fitting) != 1:
            raise SchemaViolation("name the opening event", field="event")
        event = fitting[0].event
    loaded = Loaded(case, wf, Projection(state=START), [], [], parent)
    return await _fire(
        session,
        node=node,
        caller=caller,
        policy=policy,
        config=config,
        loaded=loaded,
        event=event,
        data=body,
        envelope=envelope,
        now=now,
        new_case=True,
    )


def _parent_facts(parent: Case, t: Transition) -> Facts:
    return Facts(
        workflow="",
        case_type=parent.case_type,
        state=START,
        event=t.event,
        side=Side.REQUESTING,
        body=bodies.NoBody(),
        account_id=None,
        roles=frozenset(),
        now=utcnow(),
        parent_workflow=parent.workflow,
        parent_state=parent.state,
    )


# --- firing ----------------------------------------------------------------------------------


async def fire_event(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    policy: NodePolicy | None,
    config: CaseConfig,
    case_id: str,
    event: str | None,
    body: Any,
    envelope: Any,
    now: dt.datetime,
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
    case = await case_for(session, caller=caller, case_id=case_id, lock=True)
    loaded = await load(session, case)
    return await _fire(
        session,
        node=node,
        caller=caller,
        policy=policy,
        config=config,
        loaded=loaded,
        event=event,
        data=body,
        envelope=envelope,
        now=now,
        new_case=False,
    )


def _envelope_event(payload: MessagePayload) -> tuple[str, Any, int, str]:
    b = payload.body
    if not isinstance(b.get("event"), str) or not isinstance(b.get("seq"), int):
        raise SchemaViolation(
            'a case event envelope has body {"event", "workflow", "seq", "from_state", "data"}',
            field="payload.body",
        )
    return b["event"], b.get("data", {}), b["seq"], str(b.get("from_state"))


def _not_allowed(wf: Workflow, state: str, event: str) -> InvalidState:
    allowed = sorted({t.event for t in wf.from_state(state)})
    if event not in wf.events:
        return InvalidState(
            f"{event!r} is not an event of the {wf.name} workflow",
            allowed_events=allowed,
        )
    return InvalidState(
        f"{event} is not allowed in state {state} of the {wf.name} workflow"
        f" (allowed: {', '.join(allowed) or 'none'})",
        state=state,
        allowed_events=allowed,
    )


@dataclass(slots=True)
class _Plan:
    """An event checked and ready to sign: its row of the table, the side firing it, its
    validated body, the request it carries, and the caller's signature if self-signed."""

    transition: Transition
    side: Side
    body: BaseModel
    request: BaseModel | None
    signed: tuple[Any, MessagePayload, str] | None


async def _plan(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    loaded: Loaded,
    event: str | None,
    data: Any,
    envelope: Any,
    new_case: bool,
) -> _Plan | Fired:
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    signed: tuple[Any, MessagePayload, str] | None = None
    if envelope is not None:
        if event is not None or data is not None:
            raise SchemaViolation("give either an envelope or an event with its body", field="$")
        signed = await messages.verified_submission(
            session, node=node, caller=caller, data=envelope, now=utcnow()
        )
        payload = signed[1]
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
        raise _not_allowed(wf, p.state, event)
    side = Side.REQUESTING if new_case else side_of(case, caller.participant_id)
    if side is None or t.side is not side:
        raise Forbidden(
            f"{event} is fired by the {t.side.value} side; you are the "
            f"{side.value if side else 'no'} side of this case",
        )
    if caller.roles.isdisjoint(t.roles):
        raise Forbidden(f"{event} needs one of the roles {sorted(t.roles)}")
    body = _validate(t.body, data, "body")
    return _Plan(t, side, body, _request_for(node, case, t, body), signed)


def _check_guards(loaded: Loaded, plan: _Plan, caller: Caller, now: dt.datetime) -> None:
    """Raises GuardError (or its 403 and 409 kinds) naming the guard and its citation."""
    case, p = loaded.case, loaded.projection
    facts = Facts(
        workflow=loaded.workflow.name,
        case_type=case.case_type,
        state=p.state,
        event=plan.transition.event,
        side=plan.side,
        body=plan.body,
        account_id=caller.account_id,
        roles=caller.roles,
        now=now,
        drafters=loaded.drafters,
        records=p.records,
        initiated_by=case.initiated_by,
        urgent=case.urgent,
        response_kind=p.response_kind,
        parent_workflow=loaded.parent.workflow if loaded.parent else None,
        parent_state=loaded.parent.state if loaded.parent else None,
        parent_terms=loaded.parent.terms if loaded.parent else {},
        evidence={
            f.id: EvidenceFacts(Side(f.side), f.id in loaded.delivered)
            for f in loaded.evidence
            if f.erased_at is None
        },
    )
    for guard in plan.transition.guards:
        failure = guard.failure(facts)
        if failure is not None:
            raise failure.error()


async def _fire(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    policy: NodePolicy | None,
    config: CaseConfig,
    loaded: Loaded,
    event: str | None,
    data: Any,
    envelope: Any,
    now: dt.datetime,
    new_case: bool,
) -> Fired | messages.Refused:
    planned = await _plan(
        session,
        node=node,
        caller=caller,
        loaded=loaded,
        event=event,
        data=data,
        envelope=envelope,
        new_case=new_case,
    )
    if isinstance(planned, Fired):
        return planned
    _check_guards(loaded, planned, caller, now)
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    t, side, body, request = planned.transition, planned.side, planned.body, planned.request
    if new_case:
        case.purpose = getattr(body, "purpose", None) or case.purpose
    seq = p.seq + 1
    recipient = _recipient(loaded, t, side, caller, new_case)
    draft = _draft(loaded, t, _event_data(body, request), body, request, recipient, seq)
    signed = planned.signed
    if signed is None:
        signed = await messages.verified_submission(
            session, node=node, caller=caller, data={"draft": draft}, now=utcnow()
        )
    else:
        _check_matches(signed[1], draft)
    env, payload, kid = signed
    event_id = str(uuid7())
    to_state = t.target_from(p.state)
    outcome = await messages.accept(
        session,
        node=node,
        caller=caller,
        envelope=env,
        payload=payload,
        kid_used=kid,
        now=utcnow(),
        policy=policy,
        known=known_fields(case=case, projection=p, event=t.event, body=body, request=request),
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
    if isinstance(outcome, messages.Refused):
        return outcome
    if new_case:
        session.add(case)
        await session.flush()
    message = await session.get(Message, outcome.message_id)
    assert message is not None
    details = _details(t, body)
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
                "envelope_sha256": env.digest,
                "at": now,
                "details": details,
                "policy_pack": message.policy_hash,
                "policy_rules": list(message.policy_rules),
                "node_signature": None,
            }
        ],
    )
    ev = (await session.scalars(select(CaseEvent).where(CaseEvent.event_id == event_id))).one()
    _apply_effects(node, loaded, t, request, details, new_case)
    case.head_message_id = outcome.message_id
    loaded.events.append(ev)
    loaded.projection = step(wf, p, ev)
    _advance(case, loaded.projection, now)
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
    await session.flush()
    return Fired(case, ev, outcome.envelope, reply)


def _recipient(loaded: Loaded, t: Transition, side: Side, caller: Caller, new_case: bool) -> str:
    """The other side once the case is shared (or by the event that shares it); before, the
    caller's own participant: drafting and vetting stay inside it."""
    case = loaded.case
    if not (loaded.projection.shared or t.event == loaded.workflow.sharing_event or new_case):
        return caller.participant_id
    return case.requested_id if side is Side.REQUESTING else case.requesting_id


async def prepare_event(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    case_id: str,
    event: str | None,
    body: Any,
    now: dt.datetime,
) -> dict[str, Any]:
    """The payload a self-signing client signs to fire ``event`` with ``body`` now, without
    ``id``, ``sender`` and ``created_at`` (the client adds them). Nothing is stored. Raises
    what ``fire_event`` raises before signing."""
    case = await case_for(session, caller=caller, case_id=case_id)
    loaded = await load(session, case)
    planned = await _plan(
        session,
        node=node,
        caller=caller,
        loaded=loaded,
        event=event,
        data=body,
        envelope=None,
        new_case=False,
    )
    assert isinstance(planned, _Plan)
    _check_guards(loaded, planned, caller, now)
    t, request = planned.transition, planned.request
    recipient = _recipient(loaded, t, planned.side, caller, False)
    data = _event_data(planned.body, request)
    return _draft(loaded, t, data, planned.body, request, recipient, loaded.projection.seq + 1)


def _apply_effects(
    node: NodeContext,
    loaded: Loaded,
    t: Transition,
    request: BaseModel | None,
    details: Mapping[str, Any],
    new_case: bool,
) -> None:
    """What an event changes on the case row beyond the fold: the request it amends or
    sends, a thread's terms, the recipients and purposes a response or disclosure permits."""
    case = loaded.case
    if t.amends_request and request is not None:
        _apply_request(case, request)
        case.request_ciphertext, case.request_key = seal_request(node, request)
    if new_case:
        case.terms = {k: v for k, v in details.items() if k in ("recipient", "purpose")}
    if t.widens_terms:
        _widen_terms(case, details)
    if t.grants_parent_consent and loaded.parent is not None:
        # The consent widens what the parent case's material may be used for (P18, 18(19)).
        parent_terms = dict(loaded.parent.terms)
        parent_terms["consents"] = [
            *parent_terms.get("consents", []),
            {
                "provider": case.requested_id,
                "recipient": case.terms.get("recipient"),
                "purpose": case.terms.get("purpose"),
                "thread": case.id,
            },
        ]
        loaded.parent.terms = parent_terms


def _request_for(node: NodeContext, case: Case, t: Transition, body: BaseModel) -> BaseModel | None:
    """The request an event carries: an amendment in its body, else the stored one (for the
    events that send or vet it), else None."""
    if not t.carries_request:
        return None
    given: BaseModel | None = getattr(body, "request", None) or getattr(body, "disclosure", None)
    if given is not None:
        if t.request_as_stored:
            stored = open_request(node, case)
            if stored is None or given != stored:
                raise SchemaViolation(
                    "body.request: a transmitted request is the vetted one, unchanged",
                    field="body.request",
                )
        return given
    return open_request(node, case)


def _event_data(body: BaseModel, request: BaseModel | None) -> dict[str, Any]:
    data = bodies.as_json(body)
    if request is not None:
        name = "disclosure" if "disclosure" in type(body).model_fields else "request"
        data[name] = request.model_dump(mode="json", exclude_none=True)
    return data


def _draft(
    loaded: Loaded,
    t: Transition,
    data: dict[str, Any],
    body: BaseModel,
    request: BaseModel | None,
    recipient: str,
    seq: int,
) -> dict[str, Any]:
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    categories: list[str] = list(getattr(body, "data_categories", None) or [])
    subject_cats: list[str] = list(getattr(body, "data_subject_categories", None) or [])
    if request is not None:
        persons = getattr(request, "persons_concerned", None) or getattr(request, "subjects", [])
        if persons:
            categories = sorted({*categories, "personal"})
            subject_cats = sorted({*subject_cats, *(x.category for x in persons)})
    files = {f.id: f for f in loaded.evidence}
    attachments = [
        {
            "name": files[str(i)].name,
            "media_type": files[str(i)].media_type,
            "size": files[str(i)].size,
            "sha256": files[str(i)].sha256,
        }
        for i in getattr(body, "evidence", [])
    ]
    draft: dict[str, Any] = {
        **envelope_metadata(case),
        "type": wf.message_type(t, case.case_type),
        "recipient": recipient,
        "in_reply_to": case.head_message_id,
        "body": {
            "event": t.event,
            "workflow": wf.name,
            "seq": seq,
            "from_state": p.state,
            "data": data,
        },
    }
    if categories:
        draft["data_categories"] = categories
    if subject_cats:
        draft["data_subjects"] = subjects(subject_cats)
    if attachments:
        draft["attachments"] = attachments
    permitted = getattr(body, "permitted_recipients", None) or getattr(
        request, "permitted_recipients", None
    )
    purposes = getattr(body, "permitted_purposes", None) or getattr(
        request, "permitted_purposes", None
    )
    if t.permits_named_recipients and request is not None:
        permitted = getattr(request, "named_recipients", None)
    if permitted:
        draft["permitted_recipients"] = list(permitted)
    if purposes:
        draft["permitted_purposes"] = list(purposes)
    return {k: v for k, v in draft.items() if v is not None}


_ENVELOPE_COMPARED = ("id", "sender", "created_at", "expires_at", "body")


def _check_matches(payload: MessagePayload, draft: dict[str, Any]) -> None:
    """A self-signed event envelope must declare exactly what the node would have."""
    expected = DraftPayload.model_validate(draft)
    want = expected.model_dump(mode="json", exclude_none=True, exclude={"expires_at", "body"})
    got = payload.model_dump(mode="json", exclude_none=True, exclude=set(_ENVELOPE_COMPARED))
    for key in sorted(set(want) | set(got)):
        if want.get(key) != got.get(key):
            raise SchemaViolation(
                f"payload.{key} must be {want.get(key)!r} for this event of this case",
                field=f"payload.{key}",
            )
    if orjson.dumps(payload.body, option=orjson.OPT_SORT_KEYS) != orjson.dumps(
        expected.body, option=orjson.OPT_SORT_KEYS
    ):
        raise SchemaViolation(
            "payload.body must be the event as the node would sign it: "
            + orjson.dumps(expected.body, option=orjson.OPT_SORT_KEYS).decode()[:500],
            field="payload.body",
        )


def _details(t: Transition, body: BaseModel) -> dict[str, Any]:
    """The event's metadata kept in the clear: field names, codes, dates, conditions (which
    become restrictions), evidence ids. Never free text."""
    details: dict[str, Any] = {"fields": sorted(bodies.filled_fields(body))}
    for name in (
        "grounds",
        "kind",
        "conditions",
        "recipient",
        "purpose",
        "permitted_recipients",
        "permitted_purposes",
    ):
        value = getattr(body, name, None)
        if value:
            details[name] = list(value) if isinstance(value, list | tuple) else value
    if t.records_by_reason:
        details["reason"] = getattr(body, "reason", None)
    review = bodies.review_date_of(body)
    if review is not None:
        details["review_date"] = review.isoformat()
    evidence = getattr(body, "evidence", None)
    if evidence:
        details["evidence"] = [str(e) for e in evidence]
    return details


def _widen_terms(case: Case, details: Mapping[str, Any]) -> None:
    terms = dict(case.terms)
    for key in ("permitted_recipients", "permitted_purposes"):
        if details.get(key):
            terms[key] = sorted({*terms.get(key, []), *details[key]})
    case.terms = terms


def _advance(case: Case, p: Projection, now: dt.datetime) -> None:
    case.state = p.state
    case.seq = p.seq
    case.projection = projection_json(p)
    case.shared_at = p.shared_at
    case.updated_at = now


# --- notices and clocks ----------------------------------------------------------------------


async def record_system_event(
    session: AsyncSession,
    *,
    node: NodeContext,
    loaded: Loaded,
    event: str,
    details: dict[str, Any],
    now: dt.datetime,
    audit_kind: AuditKind = AuditKind.CASE_TRANSITION,
) -> CaseEvent:
    """Append an event of the node's own (a notice, the retention expiry, an acknowledgement
    on the requested side's signed receipt), signed by the node, with its one audit leaf.
    Raises HistoryError if the table does not allow it (a bug)."""
    case, wf, p = loaded.case, loaded.workflow, loaded.projection
    applied_to = p.state
    event_id = str(uuid7())
    row: dict[str, Any] = {
        "event_id": event_id,
        "case_id": case.id,
        "seq": p.seq + 1,
        "event": event,
        "from_state": applied_to,
        "to_state": applied_to,
        "side": Side.SYSTEM.value,
        "actor_participant": None,
        "actor_account": None,
        "message_id": None,
        "envelope_sha256": None,
        "at": now,
        "details": details,
        "policy_pack": None,
        "policy_rules": [],
    }
    t = wf.transition(p.state, event)
    if t is not None:
        row["to_state"] = t.target_from(p.state)
    row["node_signature"] = node.signer.sign(
        orjson.dumps(
            {k: row[k] for k in ("event_id", "case_id", "seq", "event", "at", "details")},
            option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z,
        )
    ).hex()
    await session.execute(insert(CaseEvent), [row])
    ev = (await session.scalars(select(CaseEvent).where(CaseEvent.event_id == event_id))).one()
    loaded.events.append(ev)
    nxt = step(wf, p, ev)
    loaded.projection = nxt
    _advance(case, nxt, now)
    await record_event(
        session,
        kind=audit_kind,
        node=node.node_id,
        actor=None,
        participant_id=None,
        at=now,
        case_id=case.id,
        workflow=wf.name,
        case_event=event,
        seq=row["seq"],
        from_state=row["from_state"],
        to_state=row["to_state"],
        case_event_id=event_id,
        side=Side.SYSTEM.value,
        notice=details.get("notice"),
        deadline=details.get("deadline"),
    )
    return ev


async def record_notice(
    session: AsyncSession,
    *,
    node: NodeContext,
    loaded: Loaded,
    notice: str,
    key: str,
    detail: Mapping[str, Any],
    now: dt.datetime,
) -> CaseEvent:
    return await record_system_event(
        session,
        node=node,
        loaded=loaded,
        event=notice,
        details={"notice": notice, "key": key, **detail},
        now=now,
        audit_kind=AuditKind.CASE_NOTICE,
    )


def case_deadlines(loaded: Loaded, config: CaseConfig, now: dt.datetime) -> list[Deadline]:
    case = loaded.case
    requested = (case.deadline, case.deadline_reason) if case.deadline else None
    return deadlines(
        workflow=loaded.workflow,
        events=loaded.events,
        clocks=config.clocks,
        legal_basis=case.legal_basis,
        requested=requested,
        now=now,
    )


def reschedule(loaded: Loaded, config: CaseConfig, now: dt.datetime) -> list[Due]:
    """Set ``next_due_at`` (earliest open deadline) and ``next_check_at`` (when the timers
    must look at the case next); return what is due, earliest first."""
    case, p = loaded.case, loaded.projection
    found = case_deadlines(loaded, config, now)
    open_ones = [d for d in found if d.open]
    actions = due_actions(
        workflow=loaded.workflow,
        events=loaded.events,
        state=p.state,
        records=p.records,
        review_date=p.review_date,
        urgent=case.urgent,
        initiated_by=case.initiated_by,
        shared_at=p.shared_at,
        open_deadlines=open_ones,
        retention=config.retention,
        urgent_every=config.urgent_escalation,
    )
    running = [d.due_at for d in open_ones if d.status != "paused"]
    case.next_due_at = min(running) if running else None
    case.next_check_at = actions[0].at if actions else None
    return actions


def progress(loaded: Loaded, config: CaseConfig, now: dt.datetime) -> dict[str, Any]:
    """The answer to a progress query (18(24)), from the case's state alone."""
    p = loaded.projection
    last = next((ev for ev in reversed(loaded.events) if not ev.details.get("notice")), None)
    return {
        "state": p.state,
        "since": last.at.isoformat() if last else None,
        "paused": p.paused_since is not None,
        "deadlines": [
            {"name": d.name, "due_at": d.due_at.isoformat(), "status": d.status}
            for d in case_deadlines(loaded, config, now)
        ],
    }


# --- reading and listing ---------------------------------------------------------------------


async def children_of(session: AsyncSession, case: Case, caller: Caller) -> list[Case]:
    rows = (
        await session.scalars(select(Case).where(Case.parent_id == case.id).order_by(Case.id))
    ).all()
    return [c for c in rows if can_see(c, caller)]


async def list_cases(
    session: AsyncSession,
    *,
    caller: Caller,
    now: dt.datetime,
    state: str | None = None,
    counterpart: str | None = None,
    overdue: bool | None = None,
    urgent: bool | None = None,
    workflow: str | None = None,
    parent_id: str | None = None,
    before: str | None = None,
    limit: int = 50,
) -> list[Case]:
    """The caller's cases, newest first, filtered."""
    me = caller.participant_id
    stmt = select(Case).where(
        or_(
            Case.requesting_id == me,
            and_(Case.requested_id == me, Case.shared_at.is_not(None)),
        )
    )
    if caller.roles.isdisjoint(CASE_HANDLING_PEOPLE):
        stmt = stmt.where(Case.confidential.is_(False))
    if state:
        stmt = stmt.where(Case.state == state)
    if counterpart:
        stmt = stmt.where(
            or_(
                and_(Case.requesting_id == me, Case.requested_id == counterpart),
                and_(Case.requested_id == me, Case.requesting_id == counterpart),
            )
        )
    if overdue is True:
        stmt = stmt.where(Case.next_due_at.is_not(None), Case.next_due_at < now)
    elif overdue is False:
        stmt = stmt.where(or_(Case.next_due_at.is_(None), Case.next_due_at >= now))
    if urgent is not None:
        stmt = stmt.where(Case.urgent.is_(urgent))
    if workflow:
        stmt = stmt.where(Case.workflow == workflow)
    if parent_id:
        stmt = stmt.where(Case.parent_id == parent_id)
    if before:
        stmt = stmt.where(Case.id < before)
    return list((await session.scalars(stmt.order_by(Case.id.desc()).limit(limit))).all())


def allowed_events(loaded: Loaded, caller: Caller) -> list[Transition]:
    """The events the caller may fire now, as far as can be told without a body: the state,
    the side, the roles, and the four-eyes rule."""
    side = side_of(loaded.case, caller.participant_id)
    out = []
    for t in loaded.workflow.from_state(loaded.projection.state):
        if t.side is not side or caller.roles.isdisjoint(t.roles):
            continue
        four_eyes = any(g.excludes_drafters for g in t.guards)
        if four_eyes and caller.account_id in loaded.drafters:
            continue
        out.append(t)
    return out


async def consents_on_record(session: AsyncSession, case_id: str) -> tuple[Consent, ...]:
    """The consents granted through the case's consent threads, as the policy engine reads
    them (``Context.consents``): for deciding onward use of the case's material."""
    rows = (
        await session.scalars(
            select(Case).where(
                Case.parent_id == case_id,
                or_(
                    false(),
                    *(and_(Case.workflow == w, Case.state == s) for w, s in _GRANTED_CONSENTS),
                ),
            )
        )
    ).all()
    return tuple(
        Consent(c.requested_id, str(c.terms.get("recipient")), str(c.terms.get("purpose")))
        for c in rows
    )


# The (workflow, state) of a thread whose consent was granted: the targets of the rows that
# grant the parent's consent.
_GRANTED_CONSENTS = tuple(
    (wf.name, t.target)
    for wf in WORKFLOWS.values()
    for t in wf.transitions
    if t.grants_parent_consent and t.target is not None
)


def request_json(node: NodeContext, case: Case) -> dict[str, Any] | None:
    request = open_request(node, case)
    return None if request is None else request.model_dump(mode="json", exclude_none=True)


__all__: Sequence[str] = [
    "Fired",
    "Loaded",
    "allowed_events",
    "can_see",
    "case_for",
    "fire_event",
    "list_cases",
    "load",
    "open_case",
    "record_notice",
    "record_system_event",
    "reschedule",
]
