"""The node's own events on a case (notices, the retention expiry, the acknowledgement on a
signed receipt), signed by the node with one audit leaf each; the case's deadlines and the
next time its timers must look at it; the answer to a progress query (18(24)).

Every notice (an event whose details name a ``notice``: a reminder, an escalation, a review,
a follow-up, whoever raises it) reaches people: ``record_system_event`` issues it, in the
same transaction as its event, as a node-signed ``notice`` message to each participant
``broker.cases.clocks.NOTICE_RECIPIENTS`` names, with the case, the rule and the due date,
through the ordinary outbox (inbox or webhook). The event row is the record that the notice
was raised, and the timers raise each one once, so each is delivered once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from broker import messages
from broker.cases.clocks import (
    NOTICE_DUE_FIELDS,
    NOTICE_RECIPIENTS,
    NOTICE_RULES,
    URGENT_NOTICES,
    Deadline,
    Due,
    deadlines,
    due_actions,
)
from broker.cases.config import CaseConfig
from broker.cases.fold import step
from broker.cases.models import CaseEvent
from broker.cases.service.loading import Loaded, advance
from broker.cases.workflow import Side
from broker.core.context import Actor, NodeContext
from broker.core.ids import uuid7
from broker.messages.models import Message
from broker.oversight.service import AuditKind, record_event


async def record_system_event(
    session: AsyncSession,
    *,
    node: NodeContext,
    loaded: Loaded,
    event: str,
    details: dict[str, Any],
    now: dt.datetime,
    audit_kind: AuditKind = AuditKind.CASE_TRANSITION,
    actor: Actor | None = None,
    leaf: Mapping[str, Any] | None = None,
    texts: Mapping[str, str] | None = None,
) -> CaseEvent:
    """Append an event of the node's own (a notice, the retention expiry, an acknowledgement
    on the requested side's signed receipt), signed by the node, with its one audit leaf;
    ``actor`` names the person it acts for (a retention review), ``leaf`` adds fields to the
    leaf. A notice (``details["notice"]``) is also issued as ``notice`` messages to the
    participants it is for (``deliver_notice``). Raises HistoryError if the table does not
    allow it (a bug)."""
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
        "actor_participant": actor.participant_id if actor else None,
        "actor_account": actor.account_id if actor else None,
        "message_id": None,
        "envelope_sha256": None,
        "at": now,
        "details": details,
        "policy_pack": None,
        "policy_rules": [],
    }
    t = wf.transition(p.state, event)
    if t is not None:
        row["to_state"] = t.target_from(p.state, p.consulted_from)
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
    advance(case, nxt, now)
    await record_event(
        session,
        kind=audit_kind,
        node=node.node_id,
        actor=actor,
        participant_id=actor.participant_id if actor else None,
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
        texts=texts,
        **(leaf or {}),
    )
    if details.get("notice"):
        await deliver_notice(session, node=node, loaded=loaded, event=ev)
    return ev


def notice_recipients(loaded: Loaded, details: Mapping[str, Any]) -> list[str]:
    """The participants a notice goes to: the sides ``NOTICE_RECIPIENTS`` names for its kind
    ("acting": the side its details name as the one that must act, the requested side if
    none; "other": the side across from it); for a kind it does not list (a follow-up), the
    side its details name, else both. Never the requested side before the case is shared."""
    case = loaded.case
    requesting, requested = Side.REQUESTING.value, Side.REQUESTED.value
    named = details.get("side")
    acting = str(named) if named in (requesting, requested) else None
    sides = NOTICE_RECIPIENTS.get(str(details["notice"]))
    if sides is None:
        sides = (acting,) if acting else (requesting, requested)
    acting = acting or requested
    other = requesting if acting == requested else requested
    party = {requesting: case.requesting_id, requested: case.requested_id}
    out: list[str] = []
    for side in sides:
        resolved = {"acting": acting, "other": other}.get(side, side)
        if resolved == requested and not loaded.projection.shared:
            continue
        if party[resolved] not in out:
            out.append(party[resolved])
    return out


async def deliver_notice(
    session: AsyncSession, *, node: NodeContext, loaded: Loaded, event: CaseEvent
) -> list[str]:
    """Issue the notice ``event`` records as a node-signed ``notice`` message to each of its
    recipients, in the caller's transaction; return the message ids. The message names the
    case, the notice, the rule it comes from with its citation (``NOTICE_RULES``, the
    details' ``citation`` first; a kind not listed names its own ``rule``), and the due date
    (the first of ``NOTICE_DUE_FIELDS`` in the details, else the time it was raised).
    Flushes."""
    case, details = loaded.case, event.details
    kind = str(details["notice"])
    # A notice of a kind the table does not list (a follow-up) may name its own rule.
    rule, citation = NOTICE_RULES.get(kind, (details.get("rule"), None))
    due = next((str(details[k]) for k in NOTICE_DUE_FIELDS if details.get(k)), None)
    body = {
        "notice": kind,
        "case": {
            "id": case.id,
            "workflow": case.workflow,
            "state": loaded.projection.state,
            "requesting": case.requesting_id,
            "requested": case.requested_id,
        },
        "case_event_id": event.event_id,
        "seq": event.seq,
        "rule": {"id": rule, "citation": details.get("citation") or citation},
        "due_at": due or event.at.isoformat(),
        "details": dict(details),
    }
    urgent = case.urgent or kind in URGENT_NOTICES
    ids = []
    for recipient in notice_recipients(loaded, details):
        ids.append(
            await messages.issue_notice(
                session,
                node=node,
                recipient=recipient,
                case_id=case.id,
                urgent=urgent,
                body=body,
                legal_basis=case.legal_basis,
                purpose=case.purpose,
                now=event.at,
                audit_fields={
                    "notice": kind,
                    "case_event_id": event.event_id,
                    "workflow": case.workflow,
                },
            )
        )
    return ids


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
        facts={"urgent": case.urgent, "information_access": case.information_access},
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
        review=config.review.review,
        terms=case.terms,
    )
    running = [d.due_at for d in open_ones if d.status != "paused"]
    case.next_due_at = min(running) if running else None
    case.next_check_at = actions[0].at if actions else None
    # P17: the retention deadline runs from closure, refusal or withdrawal (a retained final
    # state); an erased case keeps the deadline it was erased at.
    expiry = loaded.workflow.erasing_from(p.state)
    if expiry is not None:
        case.retention_until = next((a.at for a in actions if a.kind == expiry.event), None)
    elif p.state not in loaded.workflow.erased_states:
        case.retention_until = None
    return actions


async def follow_case_retention(session: AsyncSession, loaded: Loaded) -> None:
    """Give the case's messages (the envelopes of its events, and every message naming the
    case) the case's retention deadline, so none is kept longer or shorter than the case.
    Flushes."""
    case = loaded.case
    await session.flush()
    await session.execute(
        update(Message)
        .where(
            or_(
                Message.case_id == case.id,
                Message.id.in_(
                    select(CaseEvent.message_id).where(
                        CaseEvent.case_id == case.id, CaseEvent.message_id.is_not(None)
                    )
                ),
            ),
            Message.erased_at.is_(None),
        )
        .values(retention_until=case.retention_until)
        .execution_options(synchronize_session=False)
    )


def progress(loaded: Loaded, config: CaseConfig, now: dt.datetime) -> dict[str, Any]:
    """The answer to a progress query (18(24)), from the case's state alone: ``since`` is
    when the case entered its state (the last event that changed it, or the opening), not
    the time of the query nor of a side event that left the state alone."""
    p = loaded.projection
    entered = next(
        (ev.at for ev in reversed(loaded.events) if ev.to_state != ev.from_state),
        loaded.case.opened_at,
    )
    return {
        "state": p.state,
        "since": entered.isoformat(),
        "paused": p.paused_since is not None,
        "deadlines": [
            {"name": d.name, "due_at": d.due_at.isoformat(), "status": d.status}
            for d in case_deadlines(loaded, config, now)
        ],
    }
