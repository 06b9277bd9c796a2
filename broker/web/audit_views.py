"""The audit explorer: the latest checkpoint with its cosignatures, the log's entries filtered
and paged, one entry with its leaf and inclusion proof, and the consistency proofs the
reader's browser asks for.

The page shows what the API shows (`broker.oversight.views`), read through the same service:
oversight sees every entry; an officer or a supervisor sees the entries of their own
participant. It also carries what a browser needs to check it without trusting the node:
the signed checkpoint note, each leaf as its exact bytes and each inclusion proof; the
project's own module ``static/auditlog.js`` checks them with WebCrypto against the log key
the reader pinned (docs/audit.md, "Verifying in the browser").
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import zoneinfo
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from broker.core.errors import NotFound
from broker.core.paging import MAX_INT64
from broker.core.roles import Role
from broker.http import SessionDep, SettingsDep
from broker.oversight import service
from broker.oversight.service import AuditKind, EntryFilter
from broker.participants.service import list_participants
from broker.web import i18n
from broker.web.case_views import reader_timezone
from broker.web.rendering import render
from broker.web.service import WebUser
from broker.web.views import person_with, router

AUDIT_PEOPLE = (Role.OFFICER, Role.SUPERVISOR, Role.OVERSIGHT)
AuditReader = Annotated[WebUser, Depends(person_with(*AUDIT_PEOPLE))]
EXPLORER_PAGE = 25
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PARTICIPANT = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
Text = Annotated[str, Query(max_length=64)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _viewer(user: WebUser) -> str | None:
    return None if user.caller.has_any(Role.OVERSIGHT) else user.caller.participant_id


def _filter(
    values: dict[str, str], zone: zoneinfo.ZoneInfo
) -> tuple[EntryFilter, list[dict[str, str]]]:
    """The explorer's filter from the form's fields, and what is wrong with them (a field id
    and an error code the template words)."""
    errors: list[dict[str, str]] = []
    kind = values["kind"] or None
    if kind is not None and kind not in {k.value for k in AuditKind}:
        errors.append({"field": "filter-kind", "code": "kind"})
    participant = values["participant"] or None
    if participant is not None and not _PARTICIPANT.match(participant):
        errors.append({"field": "filter-participant", "code": "participant"})
    ids: dict[str, str | None] = {}
    for name in ("case", "message"):
        given = values[name].strip() or None
        if given is not None and not _UUID.match(given):
            errors.append({"field": f"filter-{name}", "code": name})
        ids[name] = given.lower() if given else None
    since = until = None
    if values["from"]:
        since = i18n.day_start(values["from"], zone)
        if since is None:
            errors.append({"field": "filter-from", "code": "date"})
    if values["to"]:
        end = i18n.day_start(values["to"], zone)
        if end is None:
            errors.append({"field": "filter-to", "code": "date"})
        else:
            # "to" is inclusive of its day: up to the start of the next one, on the wall clock
            nxt = (end.astimezone(zone).date() + dt.timedelta(days=1)).isoformat()
            until = i18n.day_start(nxt, zone)
    if since is not None and until is not None and until <= since:
        errors.append({"field": "filter-to", "code": "order"})
    return (
        EntryFilter(
            kind=kind,
            participant_id=participant,
            case_id=ids["case"],
            message_id=ids["message"],
            since=since,
            until=until,
        ),
        errors,
    )


def _leaf_fields(leaf: bytes) -> dict[str, Any]:
    fields = orjson.loads(leaf)
    return fields if isinstance(fields, dict) else {}


def _row(entry: service.Entry, proof: list[bytes], size: int) -> dict[str, Any]:
    fields = _leaf_fields(entry.leaf)
    actor = fields.get("actor")
    return {
        "entry": entry,
        "leaf_text": entry.leaf.decode("utf-8"),
        "leaf_hash": _b64(entry.leaf_hash),
        "proof": [_b64(h) for h in proof],
        "tree_size": size,
        "time": fields.get("time", ""),
        "participant": actor.get("participant") if isinstance(actor, dict) else None,
        "case_id": fields.get("case_id"),
    }


def _checkpoint_context(published: service.PublishedCheckpoint) -> dict[str, Any]:
    checkpoint = published.checkpoint()
    return {
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root": _b64(checkpoint.root_hash),
        "note": published.note,
        "published_at": published.row.created_at,
        "cosignatures": [
            {
                "witness": c.witness_name,
                "key_id": f"{c.witness_key_id:08x}",
                "at": dt.datetime.fromtimestamp(c.timestamp, dt.UTC),
            }
            for c in published.cosignatures
        ],
    }


@router.get("/audit")
async def audit_log(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AuditReader,
    before: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    kind: Text = "",
    participant: Text = "",
    case: Text = "",
    message: Text = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    values = {
        "kind": kind,
        "participant": participant,
        "case": case,
        "message": message,
        "from": from_,
        "to": to,
    }
    where, errors = _filter(values, reader_timezone(request, settings))
    context: dict[str, Any] = {
        "values": values,
        "errors": errors,
        "kinds": sorted(k.value for k in AuditKind),
        "participants": await list_participants(session),
        "all_entries": _viewer(user) is None,
        "filter_query": urlencode({k: v for k, v in values.items() if v}),
        "first": before is None,
        "rows": [],
        "next_before": None,
        "checkpoint": None,
    }
    try:
        found = await service.search_entries(
            session,
            viewer=_viewer(user),
            where=where if not errors else EntryFilter(),
            before=before,
            limit=0 if errors else EXPLORER_PAGE,
        )
    except NotFound:
        await session.commit()
        return render(request, "audit.html", context, user=user, status=422 if errors else 200)
    await session.commit()
    size = found.checkpoint.size
    context.update(
        checkpoint=_checkpoint_context(found.checkpoint),
        rows=[_row(e, p, size) for e, p in found.proofs],
        next_before=found.next_before,
        filtered=where.active(),
    )
    return render(request, "audit.html", context, user=user, status=422 if errors else 200)


@router.get("/audit/entries/{index}")
async def audit_entry(
    index: Annotated[int, Path(ge=0, le=MAX_INT64)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: AuditReader,
) -> Response:
    published = await service.published_checkpoint(session)
    size, _root, proofs = await service.inclusion_proofs(
        session, viewer=_viewer(user), index=index, tree_size=published.size, limit=1
    )
    entry, proof = proofs[0]
    fields = _leaf_fields(entry.leaf)
    # The free text the leaf commits to (a purpose, a justification), while it is kept.
    texts = await service.kept_texts(session, fields)
    await session.commit()
    row = _row(entry, proof, size)
    context = {
        "checkpoint": _checkpoint_context(published),
        "row": row,
        "rows": [row],
        "fields": sorted(fields.items()),
        "texts": texts,
    }
    return render(request, "audit_entry.html", context, user=user)


@router.get("/audit/consistency")
async def audit_consistency(
    session: SessionDep,
    user: AuditReader,
    old: Annotated[int, Query(ge=0, le=MAX_INT64)],
    new: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
) -> Response:
    """The RFC 9162 consistency proof the explorer's script asks for, from the checkpoint this
    browser saw before to the one the page shows. It reveals no entry; the script checks it
    against the roots it holds, not against any root the node sends."""
    size, _old_root, _new_root, proof = await service.consistency(session, old=old, new=new)
    await session.commit()
    return JSONResponse(
        {"old": old, "new": size, "hashes": [_b64(h) for h in proof]},
        headers={"cache-control": "no-store"},
    )
