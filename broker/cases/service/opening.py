"""Opening a case: a request workflow opens a draft with the request as given; a thread
(consent, feedback) opens under a shared case by firing its opening event."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases import bodies
from broker.cases.config import CaseContext
from broker.cases.fold import Projection, projection_json
from broker.cases.guards import Facts
from broker.cases.models import Case
from broker.cases.service.firing import Fired, fire
from broker.cases.service.loading import Loaded, case_for, side_of
from broker.cases.service.request import apply_request, seal_request, validated
from broker.cases.tables import CHILD_WORKFLOWS, WORKFLOWS
from broker.cases.workflow import START, Side, Transition, Workflow
from broker.core.context import NO_ACTOR, Actor, NodeContext
from broker.core.db import utcnow
from broker.core.errors import Conflict, Forbidden, InvalidState, SchemaViolation, UnknownRecipient
from broker.core.ids import uuid7
from broker.oversight.service import AuditKind, record_event
from broker.participants.models import Participant


async def _participant(session: AsyncSession, participant_id: str, field: str) -> Participant:
    found = await session.get(Participant, participant_id)
    if found is None:
        raise UnknownRecipient(f"no participant {participant_id} is registered", field=field)
    return found


async def open_case(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    workflow: str,
    counterpart: str | None,
    request: Any,
    parent_id: str | None,
    event: str | None,
    body: Any,
    envelope: Any,
) -> Case | Fired | messages.Refused:
    """Open a case. A request workflow (MLA, FIU request, disclosure) opens a draft with the
    request as given (``case:opened`` leaf); a thread (consent, feedback) opens by firing its
    opening event on a case the caller is a party of, so it returns like ``fire_event``.

    Raises NotFound (parent), SchemaViolation, UnknownRecipient, Conflict (counterpart is
    yourself), Forbidden (role), InvalidState (parent not shared), and what ``fire_event``
    raises.
    """
    node, caller, now = ctx.node, ctx.caller, ctx.now
    wf = WORKFLOWS.get(workflow)
    if wf is None:
        raise SchemaViolation(
            f"unknown workflow {workflow!r} (one of {', '.join(WORKFLOWS)})", field="workflow"
        )
    if workflow in CHILD_WORKFLOWS:
        return await _open_thread(
            session,
            ctx=ctx,
            wf=wf,
            parent_id=parent_id,
            event=event,
            body=body,
            envelope=envelope,
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
    parsed = validated(wf.request_model, request, "request")
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
        actor=NO_ACTOR,
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
    actor: Actor,
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
    apply_request(case, request)
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
        **_origin(origin),
    )
    return case


def _origin(origin: str | None) -> dict[str, Any]:
    """The leaf's ``origin`` field, when the case was opened from another's (a match)."""
    return {"origin": origin} if origin is not None else {}


async def _open_thread(
    session: AsyncSession,
    *,
    ctx: CaseContext,
    wf: Workflow,
    parent_id: str | None,
    event: str | None,
    body: Any,
    envelope: Any,
) -> Fired | messages.Refused:
    caller, now = ctx.caller, ctx.now
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
    return await fire(
        session, ctx=ctx, loaded=loaded, event=event, data=body, envelope=envelope, new_case=True
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
