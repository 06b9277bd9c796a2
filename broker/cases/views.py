from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from broker import messages
from broker.cases import evidence, service
from broker.cases.clocks import Clock
from broker.cases.config import CaseConfig
from broker.cases.diagram import mermaid
from broker.cases.models import Case, EvidenceFile
from broker.cases.read_models import (
    case_read,
    event_read,
    evidence_read,
    summary,
)
from broker.cases.schemas import (
    CaseCreate,
    CasePage,
    CaseRead,
    DiagramRead,
    EventCreate,
    EventDraft,
    EvidenceList,
    EvidenceRead,
    Fired,
    RequestRead,
    WorkflowList,
    WorkflowRead,
)
from broker.cases.tables import WORKFLOWS
from broker.cases.workflow import START, Side, Workflow, describe_transition
from broker.core import crypto
from broker.core.context import CallContext, Caller
from broker.core.db import utcnow
from broker.core.errors import (
    ContentErased,
    InvalidState,
    NotFound,
    PayloadTooLarge,
    SchemaViolation,
)
from broker.core.ids import uuid7
from broker.core.text import justification as justified
from broker.envelopes.seal import seal_of
from broker.http import (
    CallerDep,
    Handler,
    NodeDep,
    SessionDep,
    SettingsDep,
    Supervisor,
)
from broker.messages.schemas import RetentionExtension
from broker.oversight.service import record_consultation
from broker.policy.views import PolicyDep

router = APIRouter(prefix="/v1", tags=["cases"])


def get_clock(request: Request) -> Clock:
    """The node's clock for case time (deadlines, timelines); tests replace it to control
    time instead of sleeping."""
    clock: Clock = getattr(request.app.state, "clock", None) or utcnow
    return clock


def get_case_config(request: Request, settings: SettingsDep) -> CaseConfig:
    config: CaseConfig | None = getattr(request.app.state, "case_config", None)
    if config is None:
        config = CaseConfig.from_settings(
            settings, message_consents=getattr(request.app.state, "message_consents", None)
        )
        request.app.state.case_config = config
    return config


ClockDep = Annotated[Clock, Depends(get_clock)]
ConfigDep = Annotated[CaseConfig, Depends(get_case_config)]


@router.get("/workflows", response_model=WorkflowList)
async def list_workflows(_caller: CallerDep) -> WorkflowList:
    """Every transition table, with each event's side, roles, body schema, guards and
    citation, and its Mermaid diagram."""
    return WorkflowList(items=[_workflow_read(wf) for wf in WORKFLOWS.values()])


@router.get("/workflows/{name}", response_model=WorkflowRead)
async def get_workflow(name: str, _caller: CallerDep) -> WorkflowRead:
    wf = WORKFLOWS.get(name)
    if wf is None:
        raise NotFound(f"no workflow {name}")
    return _workflow_read(wf)


def _workflow_read(wf: Workflow) -> WorkflowRead:
    data = wf.describe()
    data["transitions"] = [describe_transition(wf, t) for t in wf.transitions]
    return WorkflowRead(**data, mermaid=mermaid(wf))


@router.post("/cases", response_model=CaseRead, status_code=status.HTTP_201_CREATED)
async def open_case(
    body: CaseCreate,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
) -> CaseRead:
    """Open a draft request (MLA, FIU request, FIU disclosure) with a counterpart, or a
    consent or feedback thread under a case by firing its opening event."""
    now = clock()
    outcome = await service.open_case(
        session,
        ctx=CallContext(node, caller, policy, config, now),
        workflow=body.workflow,
        counterpart=body.counterpart,
        request=body.request,
        parent_id=body.parent_id,
        event=body.event,
        body=body.body,
        envelope=body.envelope,
    )
    await session.commit()
    if isinstance(outcome, messages.Refused):
        raise outcome.error()
    case = outcome.case if isinstance(outcome, service.Fired) else outcome
    return await case_read(session, await service.load(session, case), caller, config, now)


@router.get("/cases", response_model=CasePage)
async def list_cases(
    session: SessionDep,
    caller: Handler,
    clock: ClockDep,
    state: Annotated[str | None, Query(max_length=32)] = None,
    counterpart: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool | None = None,
    urgent: bool | None = None,
    workflow: Annotated[str | None, Query(max_length=32)] = None,
    parent_id: Annotated[str | None, Query(max_length=36)] = None,
    before: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CasePage:
    """Your participant's cases, newest first; ``overdue`` means a deadline has passed."""
    now = clock()
    rows = await service.list_cases(
        session,
        caller=caller,
        now=now,
        state=state,
        counterpart=counterpart,
        overdue=overdue,
        urgent=urgent,
        workflow=workflow,
        parent_id=parent_id,
        before=before,
        limit=limit,
    )
    items = [summary(c, caller, now) for c in rows]
    return CasePage(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get("/cases/{case_id}", response_model=CaseRead)
async def get_case(
    case_id: str, session: SessionDep, caller: Handler, config: ConfigDep, clock: ClockDep
) -> CaseRead:
    """State, timeline, deadlines, allowed next events, threads and evidence of a case."""
    case = await service.case_for(session, caller=caller, case_id=case_id)
    return await case_read(session, await service.load(session, case), caller, config, clock())


@router.get("/cases/{case_id}/diagram", response_model=DiagramRead)
async def get_diagram(case_id: str, session: SessionDep, caller: Handler) -> DiagramRead:
    """The case's workflow as a Mermaid state diagram, its current state highlighted."""
    case = await service.case_for(session, caller=caller, case_id=case_id)
    wf = WORKFLOWS[case.workflow]
    state = None if case.state == START else case.state
    return DiagramRead(workflow=wf.name, state=state, mermaid=mermaid(wf, current=state))


@router.get("/cases/{case_id}/request", response_model=RequestRead)
async def get_request(
    case_id: str,
    response: Response,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    settings: SettingsDep,
    justification: Annotated[str | None, Query(max_length=1000)] = None,
) -> RequestRead:
    """The request as drafted (requesting side) or as transmitted (requested side, once
    shared). Every call is logged as a consultation with its justification."""
    response.headers["Cache-Control"] = "no-store"
    case = await service.case_for(session, caller=caller, case_id=case_id)
    if case.erased_at is not None:
        raise service.erased_error(case)
    text = justified(justification, minimum=settings.justification_min_length, what="request")
    request = service.request_json(node, case)
    await record_consultation(
        session,
        node=node.node_id,
        actor=caller.actor(),
        justification=text,
        case_id=case.id,
        object="case_request",
    )
    await session.commit()
    return RequestRead(case_id=case.id, workflow=case.workflow, request=request)


@router.post("/cases/{case_id}/events/draft", response_model=EventDraft)
async def draft_event(
    case_id: str,
    body: EventCreate,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
    justification: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="why you read the case's request: needed when the draft carries it "
            "(transmit), which is then logged as a consultation",
        ),
    ] = None,
) -> EventDraft:
    """For a client that signs its own envelopes: the payload to sign to fire ``event`` with
    ``body`` now (add ``id``, a UUIDv7, ``sender`` and ``created_at``, sign, and post it as
    ``{"envelope": ...}`` to ``/events``). The same checks as firing apply; nothing is
    stored. A draft that carries the case's stored request (``transmit``) is a reading of it:
    it needs a ``justification`` and writes one ``content:consulted`` leaf (LED art. 25)."""
    if body.envelope is not None:
        raise SchemaViolation("a draft is asked with an event and its body", field="envelope")
    payload, carries_request = await service.prepare_event(
        session,
        ctx=CallContext(node, caller, policy, config, clock()),
        case_id=case_id,
        event=body.event,
        body=body.body,
    )
    if carries_request:
        text = justified(justification, minimum=settings.justification_min_length, what="request")
        await record_consultation(
            session,
            node=node.node_id,
            actor=caller.actor(),
            justification=text,
            case_id=case_id,
            object="case_request",
            event=body.event,
        )
        await session.commit()
    response.headers["Cache-Control"] = "no-store"
    return EventDraft(payload=payload)


@router.post(
    "/cases/{case_id}/events",
    response_model=Fired,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": Fired, "description": "the same envelope, seen before"}},
)
async def fire_event(
    case_id: str,
    body: EventCreate,
    response: Response,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
) -> Fired:
    """Fire an event: it is signed (by you, or by the node with your participant's custodial
    key), decided by policy with the case's context, routed to the other side and audited.
    Refused events answer 403 with the rules; guards answer 422, 403 or 409 with theirs."""
    now = clock()
    outcome = await service.fire_event(
        session,
        ctx=CallContext(node, caller, policy, config, now),
        case_id=case_id,
        event=body.event,
        body=body.body,
        envelope=body.envelope,
    )
    await session.commit()
    if isinstance(outcome, messages.Refused):
        raise outcome.error()
    if outcome.duplicate:
        response.status_code = status.HTTP_200_OK
    loaded = await service.load(session, outcome.case)
    return Fired(
        case=await case_read(session, loaded, caller, config, now),
        event=event_read(outcome.event),
        envelope=seal_of(outcome.envelope) if outcome.envelope is not None else None,
        reply=event_read(outcome.reply) if outcome.reply is not None else None,
    )


@router.post("/cases/{case_id}/retention", response_model=CaseRead)
async def extend_retention(
    case_id: str,
    body: RetentionExtension,
    session: SessionDep,
    node: NodeDep,
    caller: Supervisor,
    policy: PolicyDep,
    config: ConfigDep,
    clock: ClockDep,
) -> CaseRead:
    """Extend the retention of an ended case your participant is a party to, by a reasoned
    review (P17): from ``PALERMO_RETENTION_REVIEW_DAYS`` before its deadline (the clocks remind
    both parties then), to a later one, with reasons; a ``retention_extended`` notice on the
    case and one ``retention:extended`` leaf. Its messages and evidence follow."""
    now = clock()
    case = await service.extend_case_retention(
        session,
        ctx=CallContext(node, caller, policy, config, now),
        case_id=case_id,
        until=body.until,
        reason=body.reason,
    )
    await session.commit()
    return await case_read(session, await service.load(session, case), caller, config, now)


# --- evidence --------------------------------------------------------------------------------


@router.post(
    "/cases/{case_id}/evidence",
    response_model=EvidenceRead,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def upload_evidence(
    case_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    config: ConfigDep,
    clock: ClockDep,
    name: Annotated[str, Query(min_length=1, max_length=255)],
    media_type: Annotated[str | None, Query(min_length=3, max_length=127)] = None,
    sha256: Annotated[str | None, Query(pattern=r"^[0-9a-f]{64}$")] = None,
) -> EvidenceRead:
    """Upload one evidence file as the raw request body, streamed: hashed while it streams,
    encrypted at rest in chunks, refused past the size limit. A later ``deliver_partial``,
    ``complete`` or ``respond`` lists its id and signs its name, size and digest. Give
    ``sha256`` to have the digest checked."""
    case = await service.case_for(session, caller=caller, case_id=case_id)
    side = service.side_of(case, caller.participant_id)
    assert side is not None
    if case.state in WORKFLOWS[case.workflow].finals:
        raise InvalidState(f"the case is {case.state}: it takes no more evidence")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.evidence_max_bytes:
        raise PayloadTooLarge(f"the file is over the evidence limit of {config.evidence_max_bytes}")
    kind = evidence.checked_media_type(media_type or request.headers.get("content-type"))
    name = evidence.checked_file_name(name)
    case_key = case.id
    # Leave the transaction before streaming: a long upload must not hold a database lock.
    await session.commit()
    file_id = str(uuid7())
    key = crypto.random_key()
    path = evidence.path_for(config.evidence_dir, case_key, file_id)
    stored = await evidence.receive(
        request.stream(), path=path, key=key, file_id=file_id, limit=config.evidence_max_bytes
    )
    if sha256 is not None and sha256 != stored.sha256:
        evidence.erase(path)
        raise SchemaViolation(
            f"the file's SHA-256 is {stored.sha256}, not the {sha256} you declared",
            field="sha256",
        )
    row = await evidence.record_upload(
        session,
        node=node,
        caller=caller,
        case_id=case_key,
        side=side.value,
        file_id=file_id,
        name=name,
        media_type=kind[:127],
        stored=stored,
        key=key,
        storage=str(path.relative_to(config.evidence_dir)),
        now=clock(),
    )
    await session.commit()
    return evidence_read(row, set())


@router.get("/cases/{case_id}/evidence", response_model=EvidenceList)
async def list_evidence(case_id: str, session: SessionDep, caller: Handler) -> EvidenceList:
    """The files of a case you may read: your side's, and those delivered to you."""
    case = await service.case_for(session, caller=caller, case_id=case_id)
    loaded = await service.load(session, case)
    mine = service.side_of(case, caller.participant_id)
    delivered = loaded.delivered
    return EvidenceList(
        items=[
            evidence_read(f, delivered)
            for f in loaded.evidence
            if (mine is not None and f.side == mine.value) or f.id in delivered
        ]
    )


@router.get(
    "/cases/{case_id}/evidence/{file_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_evidence(
    case_id: str,
    file_id: str,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    settings: SettingsDep,
    config: ConfigDep,
    justification: Annotated[str | None, Query(max_length=1000)] = None,
) -> StreamingResponse:
    """Stream a file in bounded memory. Every download is logged as a consultation with its
    justification (LED art. 25)."""
    case, row, _mine = await _held_file(session, caller, case_id, file_id)
    text = justified(justification, minimum=settings.justification_min_length, what="evidence")
    await record_consultation(
        session,
        node=node.node_id,
        actor=caller.actor(),
        justification=text,
        case_id=case.id,
        object="evidence",
        evidence_id=row.id,
        sha256=row.sha256,
        size=row.size,
    )
    key = evidence.open_key(node, row)
    path = config.evidence_dir / row.storage
    size, digest, media, filename = row.size, row.sha256, row.media_type, row.name
    count = row.chunk_count
    served, headers = evidence.download_headers(filename, media)
    await session.commit()
    return StreamingResponse(
        evidence.chunks(path, key=key, file_id=file_id, chunk_count=count),
        media_type=served,
        headers={"Content-Length": str(size), "X-Content-SHA256": digest, **headers},
    )


async def _held_file(
    session: SessionDep, caller: Caller, case_id: str, file_id: str
) -> tuple[Case, EvidenceFile, Side | None]:
    """A case's evidence file the caller's side uploaded or was delivered, not erased."""
    case = await service.case_for(session, caller=caller, case_id=case_id)
    loaded = await service.load(session, case)
    mine = service.side_of(case, caller.participant_id)
    row = next((f for f in loaded.evidence if f.id == file_id), None)
    if row is None or not (
        (mine is not None and row.side == mine.value) or row.id in loaded.delivered
    ):
        raise NotFound(f"no evidence file {file_id} in case {case_id}")
    if row.erased_at is not None or row.key_for_node is None:
        raise ContentErased(
            f"evidence file {row.id}", row.erased_at, case_id=case.id, evidence_id=row.id
        )
    return case, row, mine


@router.get(
    "/cases/{case_id}/evidence/{file_id}/sealed",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_sealed_evidence(
    case_id: str,
    file_id: str,
    session: SessionDep,
    node: NodeDep,
    caller: Handler,
    settings: SettingsDep,
    config: ConfigDep,
    justification: Annotated[str | None, Query(max_length=1000)] = None,
) -> StreamingResponse:
    """The file as stored, still sealed in chunks, with its key sealed to your participant's
    encryption key (``X-Sealed-Key``, ``X-Enc-Kid``): open it with your own private key
    (``broker.client.open_sealed_evidence``), not the node's. A logged consultation."""
    case, row, mine = await _held_file(session, caller, case_id, file_id)
    if mine is Side.REQUESTING:
        sealed, kid = row.key_for_requesting, row.requesting_enc_kid
    else:
        sealed, kid = row.key_for_requested, row.requested_enc_kid
    if sealed is None or kid is None:
        raise InvalidState(
            "this file's key was not sealed to your participant: it had no encryption key at "
            "upload, or the file is older than sealed copies; download it with "
            f"GET /v1/cases/{case_id}/evidence/{file_id}"
        )
    text = justified(justification, minimum=settings.justification_min_length, what="evidence")
    await record_consultation(
        session,
        node=node.node_id,
        actor=caller.actor(),
        justification=text,
        case_id=case.id,
        object="evidence_sealed",
        evidence_id=row.id,
        sha256=row.sha256,
        size=row.size,
    )
    path = config.evidence_dir / row.storage
    headers = {
        "X-Sealed-Key": base64.b64encode(sealed).decode("ascii"),
        "X-Enc-Kid": kid,
        "X-Chunk-Count": str(row.chunk_count),
        "X-Content-SHA256": row.sha256,
        "X-Evidence-Id": row.id,
        "Cache-Control": "no-store",
    }
    await session.commit()
    return StreamingResponse(
        evidence.raw_chunks(path), media_type="application/octet-stream", headers=headers
    )
