"""The API's read models of a case, as one caller sees it: its summary, the case with its
timeline, deadlines, allowed next events, threads and evidence, and an event or evidence file
as read. The requested side's timeline starts at the sharing event: what was fired from the
workflow's private states (drafting, vetting) is the requesting side's own business.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases import service
from broker.cases.config import CaseConfig
from broker.cases.models import Case, CaseEvent, EvidenceFile
from broker.cases.schemas import (
    AllowedEvent,
    CaseRead,
    CaseSummary,
    DeadlineRead,
    EventRead,
    EvidenceRead,
    ThreadRead,
)
from broker.cases.workflow import Side
from broker.core.context import Caller


def event_read(ev: CaseEvent) -> EventRead:
    return EventRead(
        id=ev.event_id,
        seq=ev.seq,
        event=ev.event,
        from_state=ev.from_state,
        to_state=ev.to_state,
        side=ev.side,
        actor_participant=ev.actor_participant,
        actor_account=ev.actor_account,
        message_id=ev.message_id,
        envelope_sha256=ev.envelope_sha256,
        at=ev.at,
        details=dict(ev.details),
        policy_pack=ev.policy_pack,
        policy_rules=list(ev.policy_rules),
        node_signature=ev.node_signature,
    )


def evidence_read(f: EvidenceFile, delivered: set[str]) -> EvidenceRead:
    return EvidenceRead(
        id=f.id,
        case_id=f.case_id,
        side=f.side,
        name=f.name,
        media_type=f.media_type,
        size=f.size,
        sha256=f.sha256,
        uploaded_by=f.uploaded_by_participant,
        created_at=f.created_at,
        delivered=f.id in delivered,
        erased=f.erased_at is not None,
    )


def summary(case: Case, caller: Caller, now: dt.datetime) -> CaseSummary:
    side = service.side_of(case, caller.participant_id)
    return CaseSummary(
        id=case.id,
        workflow=case.workflow,
        case_type=case.case_type,
        parent_id=case.parent_id,
        state=case.state,
        requesting=case.requesting_id,
        requested=case.requested_id,
        counterpart=case.requested_id if side is Side.REQUESTING else case.requesting_id,
        side=side.value if side else "",
        urgent=case.urgent,
        information_access=case.information_access,
        confidential=case.confidential,
        legal_basis=case.legal_basis,
        purpose=case.purpose,
        opened_at=case.opened_at,
        updated_at=case.updated_at,
        shared_at=case.shared_at,
        next_due_at=case.next_due_at,
        overdue=case.next_due_at is not None and case.next_due_at < now,
        origin=case.origin,
    )


async def case_read(
    session: AsyncSession,
    loaded: service.Loaded,
    caller: Caller,
    config: CaseConfig,
    now: dt.datetime,
) -> CaseRead:
    case, p = loaded.case, loaded.projection
    delivered = loaded.delivered
    mine = service.side_of(case, caller.participant_id)
    visible_files = [
        f for f in loaded.evidence if f.side == (mine.value if mine else "") or f.id in delivered
    ]
    threads = await service.children_of(session, case, caller)
    return CaseRead(
        **summary(case, caller, now).model_dump(),
        seq=case.seq,
        head_message_id=case.head_message_id,
        language=case.language,
        channel=case.channel,
        transfer_basis=case.transfer_basis,
        initiated_by=case.initiated_by,
        extraordinary_costs=case.extraordinary_costs,
        deadline=case.deadline,
        deadline_reason=case.deadline_reason,
        fields=list(case.fields),
        assistance_types=list(case.assistance_types),
        data_subject_categories=list(case.data_subject_categories),
        records=sorted(p.records),
        restrictions=list(p.conditions),
        offered_conditions=list(p.offered_conditions),
        response_kind=p.response_kind,
        review_date=p.review_date,
        paused=p.paused_since is not None,
        terms=dict(case.terms),
        retention_until=case.retention_until,
        erased_at=case.erased_at,
        allowed_events=[
            AllowedEvent(
                event=t.event,
                to=t.target,
                summary=t.summary,
                citation=t.citation,
                required=sorted(t.body.model_json_schema().get("required", [])),
            )
            for t in service.allowed_events(loaded, caller, now)
        ],
        deadlines=[
            DeadlineRead(
                name=d.name,
                title=d.title,
                reason=d.reason,
                citation=d.citation,
                source=d.source,
                started_at=d.started_at,
                due_at=d.due_at,
                remind_at=d.remind_at,
                stopped_at=d.stopped_at,
                paused_seconds=d.paused_seconds,
                status=d.status,
            )
            for d in service.case_deadlines(loaded, config, now)
        ],
        timeline=[event_read(ev) for ev in visible_timeline(loaded, mine)],
        threads=[
            ThreadRead(
                id=c.id,
                workflow=c.workflow,
                state=c.state,
                requesting=c.requesting_id,
                requested=c.requested_id,
            )
            for c in threads
        ],
        evidence=[evidence_read(f, delivered) for f in visible_files],
    )


def visible_timeline(loaded: service.Loaded, side: Side | None) -> list[CaseEvent]:
    """The requesting side sees everything; the requested side from the sharing event on
    (drafting and vetting are the requesting State's own business)."""
    if side is Side.REQUESTING or loaded.case.shared_at is None:
        return loaded.events
    wf, shared_at = loaded.workflow, loaded.case.shared_at
    return [
        ev
        for ev in loaded.events
        if ev.at >= shared_at and wf.visible_to_requested(ev.from_state, ev.event)
    ]
