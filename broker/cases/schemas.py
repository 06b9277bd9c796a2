from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from broker.core.jsonlimits import JsonObject
from broker.envelopes.schemas import ParticipantId
from broker.envelopes.seal import EnvelopeSeal


class CaseCreate(BaseModel):
    """Open a case. A request workflow (``mla.request``, ``fiu.request``, ``fiu.disclosure``)
    takes ``counterpart`` and ``request`` (a draft: fields may be missing). A thread
    (``consent``, ``feedback``) takes ``parent_id`` and the opening event's ``body`` (and
    ``event`` when the workflow has several), or a self-signed ``envelope`` carrying it."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(examples=["mla.request"])
    counterpart: ParticipantId | None = None
    request: JsonObject | None = None
    parent_id: str | None = Field(default=None, max_length=36)
    event: str | None = Field(default=None, max_length=40)
    body: JsonObject | None = None
    envelope: JsonObject | None = None


class EventCreate(BaseModel):
    """Fire an event: ``event`` with its ``body`` (the node signs with your participant's
    custodial key), or a self-signed ``envelope`` whose payload body is ``{"event",
    "workflow", "seq", "from_state", "data"}``."""

    model_config = ConfigDict(extra="forbid")

    event: str | None = Field(default=None, max_length=40)
    body: JsonObject | None = None
    envelope: JsonObject | None = None


class EventDraft(BaseModel):
    payload: dict[str, Any] = Field(
        description="the payload to sign, without id, sender and created_at"
    )


class EventRead(BaseModel):
    id: str
    seq: int
    event: str
    from_state: str
    to_state: str
    side: str
    actor_participant: str | None
    actor_account: str | None
    message_id: str | None
    envelope_sha256: str | None
    at: dt.datetime
    details: dict[str, Any]
    policy_pack: str | None
    policy_rules: list[str]
    node_signature: str | None


class DeadlineRead(BaseModel):
    name: str
    title: str
    reason: str | None
    citation: str
    source: str
    started_at: dt.datetime
    due_at: dt.datetime
    remind_at: dt.datetime
    stopped_at: dt.datetime | None
    paused_seconds: float
    status: str


class AllowedEvent(BaseModel):
    event: str
    to: str | None
    summary: str
    citation: str
    required: list[str]


class ThreadRead(BaseModel):
    id: str
    workflow: str
    state: str
    requesting: str
    requested: str


class EvidenceRead(BaseModel):
    id: str
    case_id: str
    side: str
    name: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str
    created_at: dt.datetime
    delivered: bool
    erased: bool


class EvidenceList(BaseModel):
    items: list[EvidenceRead]


class CaseSummary(BaseModel):
    id: str
    workflow: str
    case_type: str
    parent_id: str | None
    state: str
    requesting: str
    requested: str
    counterpart: str
    side: str
    urgent: bool
    information_access: str | None = Field(
        default=None,
        description="intel.request: the information is 'direct'ly or 'indirect'ly accessible "
        "to the requested side, which picks its Directive (EU) 2023/977 art. 5(1) time limit",
    )
    confidential: bool
    legal_basis: str | None
    purpose: str | None
    opened_at: dt.datetime
    updated_at: dt.datetime
    shared_at: dt.datetime | None
    next_due_at: dt.datetime | None
    overdue: bool
    origin: str | None


class CaseRead(CaseSummary):
    seq: int
    head_message_id: str | None
    language: str | None
    channel: str | None
    transfer_basis: str | None
    initiated_by: str
    extraordinary_costs: bool
    deadline: dt.datetime | None
    deadline_reason: str | None
    fields: list[str]
    assistance_types: list[str]
    data_subject_categories: list[str]
    records: list[str]
    restrictions: list[str] = Field(
        description="conditions accepted in consultation: use restrictions on everything the "
        "case returns (UNTOC 18(26), P9)"
    )
    offered_conditions: list[str]
    response_kind: str | None
    review_date: dt.datetime | None
    paused: bool
    terms: dict[str, Any]
    allowed_events: list[AllowedEvent]
    deadlines: list[DeadlineRead]
    timeline: list[EventRead]
    threads: list[ThreadRead]
    evidence: list[EvidenceRead]
    retention_until: dt.datetime | None = Field(
        default=None,
        description="when the case's content (request, every event envelope, evidence) is "
        "erased (P17; LED art. 4(1)(e), 5): the retention counted from closure, refusal or "
        "withdrawal; empty while the case runs",
    )
    erased_at: dt.datetime | None = Field(
        default=None, description="when the content was crypto-shredded; the history remains"
    )


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_before: str | None


class Fired(BaseModel):
    case: CaseRead
    event: EventRead
    envelope: EnvelopeSeal | None = Field(
        description="the envelope as accepted, without its payload: the actor's signature "
        "and the node's"
    )
    reply: EventRead | None = Field(
        default=None, description="the node's answer from the case state, for a progress query"
    )


class RequestRead(BaseModel):
    case_id: str
    workflow: str
    request: dict[str, Any] | None


class DiagramRead(BaseModel):
    workflow: str
    state: str | None
    mermaid: str


class WorkflowRead(BaseModel):
    name: str
    title: str
    citation: str
    case_types: list[str]
    parents: list[str]
    states: list[str]
    initial: str
    finals: list[str]
    sharing_event: str | None
    transitions: list[dict[str, Any]]
    mermaid: str


class WorkflowList(BaseModel):
    items: list[WorkflowRead]
