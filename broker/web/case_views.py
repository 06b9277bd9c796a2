"""The case pages: the participant's cases, a new request, one case with its timeline and
next events, each event's form, evidence in and out, and the letter of request.

They call the case services the ``/v1`` case API calls (``broker.cases.service``,
``broker.cases.evidence``) with the same checks, in one transaction committed before the page
is sent; ``broker.cases.views.case_read`` builds the same reading of a case as
``GET /v1/cases/{id}``. A case of another participant answers 404.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from broker import messages
from broker.accounts.service import list_accounts
from broker.cases import evidence, read_models
from broker.cases import service as cases
from broker.cases import views as case_api
from broker.cases.models import Case
from broker.cases.tables import CHILD_WORKFLOWS, WORKFLOWS
from broker.cases.workflow import GuardError, Side, Transition
from broker.core import crypto
from broker.core.context import CallContext
from broker.core.errors import (
    ContentErased,
    Forbidden,
    InvalidState,
    JustificationRequired,
    NotFound,
    PalermoError,
    PayloadTooLarge,
    SchemaViolation,
)
from broker.core.ids import uuid7
from broker.core.text import justification as justified
from broker.http import NodeDep, SessionDep, SettingsDep
from broker.oversight.service import record_consultation
from broker.participants.models import ParticipantKind
from broker.participants.service import get_participant, list_participants
from broker.policy.views import PolicyDep
from broker.web import i18n, threads
from broker.web.cases import (
    FieldError,
    FormField,
    MultipartUpload,
    edges,
    fill,
    form_fields,
    form_values,
    parse,
    state_boxes,
    validate,
)
from broker.web.rendering import render
from broker.web.review import review_of
from broker.web.service import WebUser
from broker.web.views import CsrfField, Handling, check_csrf, person_with, router

ClockDep = case_api.ClockDep
ConfigDep = case_api.ConfigDep
Supervising = Annotated[WebUser, Depends(person_with("supervisor"))]
PAGE_SIZE = 50
FORM_LIMITS = {"max_fields": 400, "max_files": 0, "max_part_size": 64 * 1024}

# How a state reads at a glance: its tag's colour (always with its name as text).
TONES = {
    "DRAFT": "draft",
    "CA_VETTING": "waiting",
    "INFO_REQUESTED": "waiting",
    "CONSULTATION": "waiting",
    "CONDITIONS_OFFERED": "waiting",
    "POSTPONED": "waiting",
    "EXECUTED": "done",
    "CLOSED": "done",
    "RESPONDED": "done",
    "SURRENDERED": "done",
    "PROSECUTION_DUE": "waiting",
    "PROSECUTION_SUBMITTED": "waiting",
    "PROSECUTION_REPORTED": "done",
    "REFUSED": "stopped",
    "WITHDRAWN": "stopped",
    "EXPIRED": "stopped",
    "ERASED": "stopped",
}


# The request workflows a participant may open from the web, by its kind, and the kinds it
# may address them to (MLA.md; POLICY-RULES.md P20, P21):
# - an MLA request (UNTOC art. 18) from and to any kind but an FIU's and an overseer's (an FIU
#   asks another FIU, FATF R.40; an oversight authority makes no requests);
# - an FIU request (FATF R.40, Egmont Principles) from an FIU to an FIU;
# - an extradition request (UNTOC art. 16) between central authorities: the channel of art.
#   16(1) and of the packs' transmission rules;
# - a joint investigation team (UNTOC art. 19) between the law-enforcement and judicial
#   authorities that may be its members (police, customs, prosecutors, judges and the central
#   authorities that set teams up);
# - a police information request (Directive (EU) 2023/977 art. 4) between police
#   participants: a law enforcement authority asks another State's Single Point of Contact.
_ALL_KINDS = frozenset(k.value for k in ParticipantKind)
_NOT_REQUESTING = frozenset({"fiu", "oversight"})
_INVESTIGATING = frozenset({"central_authority", "police", "customs", "prosecutor", "judicial"})
REQUEST_OPENERS: dict[str, frozenset[str]] = {
    "mla.request": _ALL_KINDS - {"fiu"},
    "fiu.request": frozenset({"fiu"}),
    "extradition.request": frozenset({"central_authority"}),
    "jit.team": _INVESTIGATING,
    "intel.request": frozenset({"police"}),
}
REQUEST_COUNTERPARTS: dict[str, frozenset[str]] = {
    "mla.request": _ALL_KINDS - _NOT_REQUESTING,
    "fiu.request": frozenset({"fiu"}),
    "extradition.request": frozenset({"central_authority"}),
    "jit.team": _INVESTIGATING,
    "intel.request": frozenset({"police"}),
}


def openable(kind: str) -> list[str]:
    """The request workflows a participant of ``kind`` opens from the Cases page and home, in
    the order they are offered."""
    return [name for name, kinds in REQUEST_OPENERS.items() if kind in kinds]


async def openable_for(session: SessionDep, user: WebUser) -> list[str]:
    me = await get_participant(session, user.caller.participant_id)
    return openable(me.kind)


# Events that end or turn back a request: shown last, in red.
STOPPING = frozenset({"withdraw", "refuse", "return_to_drafter"})


def tone(state: str) -> str:
    return TONES.get(state, "active")


def guard_refusal(
    exc: GuardError | Forbidden | InvalidState | SchemaViolation, t: Transition
) -> dict[str, Any]:
    """What an event page shows of a refusal by the service: a guard's refusal names the
    guard, whose table text is shown, translated, with the service's own detail under it."""
    guard = next((g for g in t.guards if g.id == exc.extra.get("guard")), None)
    return {
        "detail": exc.detail,
        "guard": guard.text if guard is not None else "",
        "citation": str(exc.extra.get("citation") or t.citation),
        "reasons": [],
    }


def policy_refusal(outcome: messages.Refused) -> dict[str, Any]:
    """What an event page shows of a policy refusal: every rule that decided."""
    return {"detail": "", "guard": "", "citation": "", "reasons": outcome.reasons}


def reader_timezone(request: Request, settings: SettingsDep) -> zoneinfo.ZoneInfo:
    name = i18n.timezone_or(
        request.cookies.get(i18n.TIMEZONE_COOKIE), settings.web_default_timezone
    )
    return zoneinfo.ZoneInfo(name)


def time_left(due: dt.datetime | None, now: dt.datetime) -> dict[str, Any] | None:
    """Days and hours to ``due`` (or since, when it passed)."""
    if due is None:
        return None
    seconds = int((due - now).total_seconds())
    late = seconds < 0
    seconds = abs(seconds)
    return {"late": late, "days": seconds // 86_400, "hours": (seconds % 86_400) // 3600}


# --- the list and the approval queue ---------------------------------------------------------


def _states() -> list[str]:
    return list(
        dict.fromkeys(
            s for name, wf in WORKFLOWS.items() if name not in CHILD_WORKFLOWS for s in wf.states
        )
    )


@router.get("/cases")
async def case_list(
    request: Request,
    session: SessionDep,
    user: Handling,
    clock: ClockDep,
    state: Annotated[str | None, Query(max_length=32)] = None,
    overdue: Annotated[int, Query(ge=0, le=1)] = 0,
    before: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    now = clock()
    rows = await cases.list_cases(
        session,
        caller=user.caller,
        now=now,
        state=state or None,
        overdue=True if overdue else None,
        before=before or None,
        limit=PAGE_SIZE + 1,
    )
    new_requests = await openable_for(session, user)
    await session.commit()
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render(
        request,
        "cases.html",
        {
            "items": [_row(c, user, now) for c in rows],
            "states": _states(),
            "state": state or "",
            "overdue": bool(overdue),
            "next_before": rows[-1].id if more and rows else None,
            "first": not before,
            "approvals": False,
            "new_requests": new_requests,
        },
        user=user,
    )


def _row(case: Case, user: WebUser, now: dt.datetime) -> dict[str, Any]:
    s = read_models.summary(case, user.caller, now)
    return {
        "case": s,
        "tone": tone(s.state),
        "left": time_left(s.next_due_at, now),
        "drafted_by_me": False,
    }


@router.get("/cases/approvals")
async def approvals(
    request: Request, session: SessionDep, user: Supervising, clock: ClockDep
) -> Response:
    """Requests of the supervisor's participant waiting for vetting and transmission."""
    now = clock()
    rows = await cases.list_cases(
        session, caller=user.caller, now=now, state="CA_VETTING", limit=PAGE_SIZE
    )
    rows = [c for c in rows if cases.side_of(c, user.caller.participant_id) is Side.REQUESTING]
    mine = await cases.drafted_by(session, rows, user.caller.account_id)
    items = []
    for c in rows:
        item = _row(c, user, now)
        item["drafted_by_me"] = c.id in mine
        items.append(item)
    await session.commit()
    return render(
        request,
        "cases.html",
        {
            "items": items,
            "states": _states(),
            "state": "CA_VETTING",
            "overdue": False,
            "next_before": None,
            "first": True,
            "approvals": True,
            "new_requests": [],
        },
        user=user,
    )


# --- a new request -----------------------------------------------------------------------------


async def _request_workflow(session: SessionDep, user: WebUser, workflow: str) -> Any:
    """The request workflow ``workflow`` if the person's participant may open it from the web
    (``REQUEST_OPENERS``); any other answers 404, as a workflow that does not exist."""
    wf = WORKFLOWS.get(workflow)
    if (
        wf is None
        or wf.request_model is None
        or workflow in CHILD_WORKFLOWS
        or workflow not in await openable_for(session, user)
    ):
        raise NotFound(f"no request workflow {workflow} to open")
    return wf


async def _counterparts(session: SessionDep, user: WebUser, workflow: str) -> list[Any]:
    """The participants a request of ``workflow`` may be addressed to: of the kinds it may
    address (``REQUEST_COUNTERPARTS``), the person's own participant left out."""
    kinds = REQUEST_COUNTERPARTS[workflow]
    return [
        p
        for p in await list_participants(session)
        if p.id != user.caller.participant_id and p.kind in kinds
    ]


async def _new_context(
    session: SessionDep,
    user: WebUser,
    policy: PolicyDep,
    workflow: str,
    counterpart: str,
    values: Mapping[str, Any],
    errors: list[FieldError],
) -> dict[str, Any]:
    wf = await _request_workflow(session, user, workflow)
    participants = await _counterparts(session, user, workflow)
    chosen = next((p for p in participants if p.id == counterpart), None)
    languages: list[str] = []
    channels: list[str] = []
    if chosen is not None:
        languages = sorted(policy.reference.languages_for(chosen.jurisdiction))
        channels = sorted(policy.reference.channels_for(chosen.jurisdiction))
    fields = form_fields(wf.request_model)
    fill(fields, values)
    return {
        "workflow": wf,
        "participants": participants,
        "counterpart": chosen,
        "counterpart_id": counterpart,
        "accepted_languages": languages,
        "notified_channels": channels,
        "fields": fields,
        "errors": errors,
    }


@router.get("/cases/new")
async def new_case_page(
    request: Request,
    session: SessionDep,
    policy: PolicyDep,
    user: Handling,
    workflow: Annotated[str, Query(max_length=32)] = "mla.request",
    counterpart: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    context = await _new_context(session, user, policy, workflow, counterpart, {}, [])
    await session.commit()
    return render(request, "case_new.html", context, user=user)


@router.post("/cases/new")
async def new_case(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    settings: SettingsDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
) -> Response:
    form = await request.form(**FORM_LIMITS)
    check_csrf(request, user, str(form.get("csrf_token") or ""))
    workflow = str(form.get("workflow") or "mla.request")
    counterpart = str(form.get("counterpart") or "")
    wf = await _request_workflow(session, user, workflow)
    assert wf.request_model is not None
    fields = form_fields(wf.request_model)
    values = form_values(fields, form)
    data, errors = parse(fields, values, reader_timezone(request, settings))
    if not counterpart:
        errors.insert(0, FieldError("f-counterpart", "counterpart", "missing", ""))
    elif counterpart not in {p.id for p in await _counterparts(session, user, workflow)}:
        # Only a participant of a kind the workflow addresses (the chooser offers no other).
        errors.insert(0, FieldError("f-counterpart", "counterpart", "not_offered", ""))
    if not errors:
        _, errors = validate(wf.request_model, data, fields)
    if not errors:
        try:
            outcome = await cases.open_case(
                session,
                ctx=CallContext(node, user.caller, policy, config, clock()),
                workflow=workflow,
                counterpart=counterpart,
                request=data,
                parent_id=None,
                event=None,
                body=None,
                envelope=None,
            )
        except PalermoError as exc:
            if exc.status >= 500:
                raise
            await session.rollback()
            field = str(exc.extra.get("field") or "")
            target = "f-counterpart" if field in ("counterpart", "") else "main"
            errors = [FieldError(target, field or "counterpart", "refused", exc.detail)]
        else:
            await session.commit()
            assert isinstance(outcome, Case)
            return RedirectResponse(f"/cases/{outcome.id}?opened=1", status_code=303)
    context = await _new_context(session, user, policy, workflow, counterpart, values, errors)
    await session.commit()
    return render(request, "case_new.html", context, user=user, status=422)


# --- one case ----------------------------------------------------------------------------------


async def _case_context(
    session: SessionDep, user: WebUser, config: ConfigDep, now: dt.datetime, case_id: str
) -> dict[str, Any]:
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    loaded = await cases.load(session, case)
    read = await read_models.case_read(session, loaded, user.caller, config, now)
    visited = {ev.from_state for ev in read.timeline} | {ev.to_state for ev in read.timeline}
    mine = cases.side_of(case, user.caller.participant_id)
    # Who fired each event: the reader's own colleagues by name; a person of the other side
    # only by their participant (the other State's staff are not named to this one).
    own = {
        a.id: a.display_name
        for a in await list_accounts(session, participant_id=user.caller.participant_id)
    }
    return {
        "case": read,
        "colleagues": {
            ev.actor_account: own[ev.actor_account]
            for ev in read.timeline
            if ev.actor_participant == user.caller.participant_id and ev.actor_account in own
        },
        "tone": tone(read.state),
        "final": read.state in loaded.workflow.finals,
        "workflow": loaded.workflow,
        "side": mine.value if mine else "",
        "boxes": state_boxes(loaded.workflow, read.state, visited),
        "edges": edges(loaded.workflow),
        "deadlines": [(d, time_left(d.due_at, now)) for d in read.deadlines],
        "left": time_left(read.next_due_at, now),
        "drafted_by_me": user.caller.account_id in loaded.drafters,
        # What moves the case on first, then side events, then what ends it.
        "next_events": sorted(
            read.allowed_events,
            key=lambda e: (e.event in STOPPING, e.to is None),
        ),
        "supervisor": user.caller.has_any("supervisor"),
        "threads": [
            {**row, "tone": tone(row["case"].state)}
            for row in await threads.case_threads(session, user.caller, case)
        ],
        "openers": threads.openers(loaded, user.caller),
    }


@router.get("/cases/{case_id}")
async def case_page(
    case_id: str,
    request: Request,
    session: SessionDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
    uploaded: Annotated[str | None, Query(max_length=36)] = None,
) -> Response:
    now = clock()
    context = await _case_context(session, user, config, now, case_id)
    await session.commit()
    context["uploaded"] = next((f for f in context["case"].evidence if f.id == uploaded), None)
    context["upload_error"] = None
    context["review"] = review_of(context["case"].retention_until, config.review, now, user)
    return render(request, "case.html", context, user=user)


async def _upload_refused(
    request: Request,
    session: SessionDep,
    user: WebUser,
    config: ConfigDep,
    now: dt.datetime,
    case_id: str,
    code: str,
    detail: str,
) -> Response:
    """The case page again, 422, with the upload's error in the summary (nothing stored)."""
    await session.rollback()
    context = await _case_context(session, user, config, now, case_id)
    await session.commit()
    context["uploaded"] = None
    context["upload_error"] = {"code": code, "detail": detail}
    return render(request, "case.html", context, user=user, status=422)


def _transition(loaded: cases.Loaded, user: WebUser, event: str) -> Transition:
    """The event as the caller's side may fire it from the case's state; the service decides
    the rest (roles, four eyes, guards, policy) when it is fired."""
    side = cases.side_of(loaded.case, user.caller.participant_id)
    t = loaded.workflow.transition(loaded.projection.state, event)
    if t is None or not t.fired_by(side):
        raise InvalidState(f"{event} cannot be fired by your side in state {loaded.case.state}")
    return t


def _event_fields(loaded: cases.Loaded, user: WebUser, t: Transition) -> list[FormField]:
    side = cases.side_of(loaded.case, user.caller.participant_id)
    delivered = loaded.delivered
    files = [
        (f.id, f"{f.name} · SHA-256 {f.sha256[:16]}…")
        for f in loaded.evidence
        if side is not None
        and f.side == side.value
        and f.id not in delivered
        and f.erased_at is None
    ]
    return form_fields(t.body, choices={"evidence": files})


async def _event_context(
    session: SessionDep,
    user: WebUser,
    case_id: str,
    event: str,
    values: Mapping[str, Any],
    errors: list[FieldError],
    refusal: dict[str, Any] | None,
) -> dict[str, Any]:
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    loaded = await cases.load(session, case)
    t = _transition(loaded, user, event)
    fields = _event_fields(loaded, user, t)
    fill(fields, values)
    allowed = {a.event for a in cases.allowed_events(loaded, user.caller)}
    return {
        "case": case,
        "tone": tone(case.state),
        "transition": t,
        "fields": fields,
        "errors": errors,
        "refusal": refusal,
        "allowed_now": t.event in allowed,
        # The event that shares the case (transmit, submit) is the first the other side sees.
        "shares": t.event == loaded.workflow.sharing_event,
        "roles_ok": not user.caller.roles.isdisjoint(t.roles),
    }


@router.get("/cases/{case_id}/events/{event}")
async def event_page(
    case_id: str, event: str, request: Request, session: SessionDep, user: Handling
) -> Response:
    context = await _event_context(session, user, case_id, event, {}, [], None)
    await session.commit()
    return render(request, "case_event.html", context, user=user)


@router.post("/cases/{case_id}/events/{event}")
async def fire_event(
    case_id: str,
    event: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    policy: PolicyDep,
    settings: SettingsDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
) -> Response:
    form = await request.form(**FORM_LIMITS)
    check_csrf(request, user, str(form.get("csrf_token") or ""))
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    loaded = await cases.load(session, case)
    t = _transition(loaded, user, event)
    fields = _event_fields(loaded, user, t)
    values = form_values(fields, form)
    data, errors = parse(fields, values, reader_timezone(request, settings))
    if not errors:
        _, errors = validate(t.body, data, fields)
    refusal: dict[str, Any] | None = None
    status = 422
    if not errors:
        await session.commit()
        try:
            outcome = await cases.fire_event(
                session,
                ctx=CallContext(node, user.caller, policy, config, clock()),
                case_id=case_id,
                event=event,
                body=data,
                envelope=None,
            )
        except (GuardError, Forbidden, InvalidState, SchemaViolation) as exc:
            await session.rollback()
            status = exc.status
            refusal = guard_refusal(exc, t)
        else:
            # A policy refusal keeps its message:refused leaf: commit, then say why.
            await session.commit()
            if isinstance(outcome, messages.Refused):
                status = 403
                refusal = policy_refusal(outcome)
            else:
                return RedirectResponse(f"/cases/{case_id}?done={event}", status_code=303)
    context = await _event_context(session, user, case_id, event, values, errors, refusal)
    await session.commit()
    return render(request, "case_event.html", context, user=user, status=status)


# --- evidence ----------------------------------------------------------------------------------


@router.post("/cases/{case_id}/evidence")
async def upload_evidence(
    case_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
) -> Response:
    """One file from a multipart form, streamed as ``POST /v1/cases/{id}/evidence`` streams
    its body: the same size limit, hashed and encrypted in chunks as it arrives."""
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    side = cases.side_of(case, user.caller.participant_id)
    assert side is not None
    if case.state in WORKFLOWS[case.workflow].finals:
        raise InvalidState(f"the case is {case.state}: it takes no more evidence")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.evidence_max_bytes + 64 * 1024:
        raise PayloadTooLarge(f"the file is over the evidence limit of {config.evidence_max_bytes}")
    case_key = case.id
    # Leave the transaction before streaming: a long upload must not hold a database lock.
    await session.commit()
    upload = MultipartUpload(
        request.headers.get("content-type", ""),
        request.stream(),
        check=lambda fields: check_csrf(request, user, fields.get("csrf_token", "")),
    )
    file_id = str(uuid7())
    key = crypto.random_key()
    path = evidence.path_for(config.evidence_dir, case_key, file_id)
    stored = await evidence.receive(
        upload.file_chunks(), path=path, key=key, file_id=file_id, limit=config.evidence_max_bytes
    )
    if not upload.filename:
        # No file chosen (the browser still sends an empty part): the token is checked now,
        # since no file part triggered the check, then the page says what to do.
        evidence.erase(path)
        check_csrf(request, user, upload.fields.get("csrf_token", ""))
        return await _upload_refused(
            request, session, user, config, clock(), case_key, "missing", ""
        )
    try:
        name = evidence.checked_file_name(upload.filename)
        media_type = evidence.checked_media_type(upload.media_type)
    except SchemaViolation as exc:
        evidence.erase(path)
        code = "type" if exc.extra.get("field") == "media_type" else "name"
        return await _upload_refused(
            request, session, user, config, clock(), case_key, code, exc.detail
        )
    row = await evidence.record_upload(
        session,
        node=node,
        caller=user.caller,
        case_id=case_key,
        side=side.value,
        file_id=file_id,
        name=name,
        media_type=media_type,
        stored=stored,
        key=key,
        storage=str(path.relative_to(config.evidence_dir)),
        now=clock(),
    )
    await session.commit()
    return RedirectResponse(f"/cases/{case_key}?uploaded={row.id}#evidence", status_code=303)


async def _evidence_row(session: SessionDep, user: WebUser, case_id: str, file_id: str) -> Any:
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    loaded = await cases.load(session, case)
    mine = cases.side_of(case, user.caller.participant_id)
    row = next((f for f in loaded.evidence if f.id == file_id), None)
    if row is None or not (
        (mine is not None and row.side == mine.value) or row.id in loaded.delivered
    ):
        raise NotFound(f"no evidence file {file_id} in case {case_id}")
    return case, row


@router.get("/cases/{case_id}/evidence/{file_id}")
async def evidence_page(
    case_id: str,
    file_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: Handling,
) -> Response:
    case, row = await _evidence_row(session, user, case_id, file_id)
    await session.commit()
    return render(
        request,
        "case_evidence.html",
        {
            "case": case,
            "file": row,
            "justification": "",
            "error": None,
            "min_justification": settings.justification_min_length,
        },
        user=user,
    )


@router.post("/cases/{case_id}/evidence/{file_id}")
async def download_evidence(
    case_id: str,
    file_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    config: ConfigDep,
    user: Handling,
    csrf_token: CsrfField = "",
    justification: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The file, streamed in bounded memory; the download is a ``content:consulted`` leaf
    with the justification, as ``GET /v1/cases/{id}/evidence/{file}``."""
    check_csrf(request, user, csrf_token)
    given = justification
    case, row = await _evidence_row(session, user, case_id, file_id)
    if row.erased_at is not None or row.key_for_node is None:
        raise ContentErased(f"evidence file {row.id}", row.erased_at)
    try:
        text = justified(given, minimum=settings.justification_min_length, what="evidence")
    except JustificationRequired as exc:
        await session.commit()
        return render(
            request,
            "case_evidence.html",
            {
                "case": case,
                "file": row,
                "justification": given,
                "error": exc.detail,
                "min_justification": settings.justification_min_length,
            },
            user=user,
            status=422,
        )
    await record_consultation(
        session,
        node=node.node_id,
        actor=user.caller.actor(),
        justification=text,
        case_id=case.id,
        object="evidence",
        evidence_id=row.id,
        sha256=row.sha256,
        size=row.size,
    )
    key = evidence.open_key(node, row)
    path = config.evidence_dir / row.storage
    size, digest, media, filename, count = (
        row.size,
        row.sha256,
        row.media_type,
        row.name,
        row.chunk_count,
    )
    served, headers = evidence.download_headers(filename, media)
    await session.commit()
    return StreamingResponse(
        evidence.chunks(path, key=key, file_id=file_id, chunk_count=count),
        media_type=served,
        headers={"Content-Length": str(size), "X-Content-SHA256": digest, **headers},
    )


# --- the letter of request ---------------------------------------------------------------------


@router.get("/cases/{case_id}/letter")
async def letter(
    case_id: str,
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    config: ConfigDep,
    clock: ClockDep,
    user: Handling,
    justification: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The request as a formal letter with every particular of 18(15), for print. Reading it
    is a ``content:consulted`` leaf with a justification, as ``GET /v1/cases/{id}/request``."""
    case = await cases.case_for(session, caller=user.caller, case_id=case_id)
    context: dict[str, Any] = {
        "case": case,
        "justification": justification or "",
        "error": None,
        "min_justification": settings.justification_min_length,
    }
    if justification is None:
        await session.commit()
        return render(request, "case_letter.html", {**context, "letter": None}, user=user)
    try:
        text = justified(justification, minimum=settings.justification_min_length, what="request")
    except JustificationRequired as exc:
        await session.commit()
        context["error"] = exc.detail
        return render(
            request, "case_letter.html", {**context, "letter": None}, user=user, status=422
        )
    body = cases.request_json(node, case) or {}
    await record_consultation(
        session,
        node=node.node_id,
        actor=user.caller.actor(),
        justification=text,
        case_id=case.id,
        object="case_request",
    )
    loaded = await cases.load(session, case)
    transmitted = next((ev for ev in loaded.events if ev.event == "transmit"), None)
    wf = loaded.workflow
    assert wf.request_model is not None
    fields = form_fields(wf.request_model)
    await session.commit()
    return render(
        request,
        "case_letter.html",
        {
            **context,
            "letter": body,
            "fields": fields,
            "transmitted": transmitted,
            "printed_at": clock(),
        },
        user=user,
    )
