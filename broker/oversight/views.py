"""The oversight API: checkpoints, entries, proofs and exports of the audit log.

Role ``oversight`` sees every entry; a participant's officers, supervisors and systems see
the entries `broker.oversight.sequencer.entry_parties` gives their participant (its own
events and the lifecycle of the messages it sent or received), and the checkpoints and
consistency proofs, which reveal no entry. Admins are refused: running the node is not
auditing it. Only oversight exports, since a bundle holds every entry.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from broker.core.context import Caller
from broker.core.db import Database
from broker.core.paging import MAX_INT64
from broker.core.roles import AUDIT_READERS, Role
from broker.http import Oversight, SessionDep, SettingsDep, require_roles
from broker.oversight import service
from broker.oversight.schemas import (
    CheckpointRead,
    ConsistencyProofRead,
    CosignatureRead,
    EntryPage,
    EntryRead,
    InclusionProofRead,
    InclusionProofs,
)
from broker.oversight.sequencer import log_signer

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Reader = Annotated[Caller, Depends(require_roles(*AUDIT_READERS))]
BUNDLE_MEDIA_TYPE = "application/x-ndjson"
MAX_CONSISTENCY_LINES = 64
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _viewer(caller: Caller) -> str | None:
    return None if caller.has_any(Role.OVERSIGHT) else caller.participant_id


@lru_cache(maxsize=4)
def _verifier_key(origin: str, seed: bytes) -> str:
    return log_signer(origin, seed).verifier().vkey


def _entry_read(entry: service.Entry) -> EntryRead:
    return EntryRead(
        index=entry.index,
        event_id=entry.event_id,
        kind=entry.kind,
        message_id=entry.message_id,
        created_at=entry.created_at,
        sequenced_at=entry.sequenced_at,
        leaf=_b64(entry.leaf),
        leaf_hash=_b64(entry.leaf_hash),
    )


@router.get("/checkpoint", response_model=CheckpointRead)
async def get_checkpoint(
    session: SessionDep,
    settings: SettingsDep,
    caller: Reader,
    witnessed: Annotated[
        bool, Query(description="the latest checkpoint that a witness has cosigned")
    ] = False,
) -> CheckpointRead:
    """The latest signed checkpoint of the log, with the witness cosignatures collected."""
    published = await service.published_checkpoint(session, witnessed=witnessed)
    checkpoint = published.checkpoint()
    return CheckpointRead(
        origin=checkpoint.origin,
        size=checkpoint.size,
        root_hash=_b64(checkpoint.root_hash),
        note=published.note,
        verifier_key=_verifier_key(settings.node_id, settings.node_signing_seed),
        created_at=published.row.created_at,
        cosignatures=[
            CosignatureRead(
                witness=c.witness_name, key_id=f"{c.witness_key_id:08x}", timestamp=c.timestamp
            )
            for c in published.cosignatures
        ],
    )


@router.get("/entries", response_model=EntryPage)
async def list_entries(
    session: SessionDep,
    settings: SettingsDep,
    caller: Reader,
    start: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    end: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="exclusive; default: one page")
    ] = None,
) -> EntryPage:
    """Entries ``start <= index < end`` of the published log that the caller may see."""
    size, stop, entries = await service.list_entries(
        session,
        viewer=_viewer(caller),
        start=start,
        end=end,
        page_size=settings.audit_page_size,
    )
    return EntryPage(
        tree_size=size,
        start=start,
        end=stop,
        entries=[_entry_read(e) for e in entries],
        next=stop if stop < size else None,
    )


@router.get("/proofs/inclusion", response_model=InclusionProofs)
async def inclusion_proof(
    session: SessionDep,
    settings: SettingsDep,
    caller: Reader,
    index: Annotated[int | None, Query(ge=0, le=MAX_INT64)] = None,
    event_id: Annotated[str | None, Query(max_length=36)] = None,
    message_id: Annotated[str | None, Query(max_length=36)] = None,
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="default: the latest checkpoint's size")
    ] = None,
) -> InclusionProofs:
    """Inclusion proofs of one entry (by index or event id) or of every entry about a message
    that the caller may see."""
    size, root, proofs = await service.inclusion_proofs(
        session,
        viewer=_viewer(caller),
        index=index,
        event_id=event_id,
        message_id=message_id,
        tree_size=tree_size,
        limit=settings.audit_page_size,
    )
    return InclusionProofs(
        tree_size=size,
        root_hash=_b64(root),
        checkpoint=await service.checkpoint_note_at(session, size),
        proofs=[
            InclusionProofRead(entry=_entry_read(e), hashes=[_b64(h) for h in proof])
            for e, proof in proofs
        ],
    )


@router.get("/proofs/consistency", response_model=ConsistencyProofRead)
async def consistency_proof(
    session: SessionDep,
    caller: Reader,
    old: Annotated[int, Query(ge=0, le=MAX_INT64)],
    new: Annotated[
        int | None, Query(ge=0, le=MAX_INT64, description="default: the latest checkpoint's size")
    ] = None,
) -> ConsistencyProofRead:
    """Proof that the tree of ``new`` entries extends the tree of ``old`` entries."""
    size, old_root, new_root, proof = await service.consistency(session, old=old, new=new)
    return ConsistencyProofRead(
        old=old,
        new=size,
        old_root=_b64(old_root),
        new_root=_b64(new_root),
        hashes=[_b64(h) for h in proof],
        old_checkpoint=await service.checkpoint_note_at(session, old),
        new_checkpoint=await service.checkpoint_note_at(session, size),
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {BUNDLE_MEDIA_TYPE: {}},
            "description": "a palermo-audit-bundle/v1 (audit/BUNDLE.md), streamed; check it "
            "with palermo-verify",
        }
    },
)
async def export(
    request: Request,
    session: SessionDep,
    caller: Oversight,
    size: Annotated[
        int | None,
        Query(ge=0, le=MAX_INT64, description="a published checkpoint size; default: latest"),
    ] = None,
    consistency_from: Annotated[
        list[int] | None,
        Query(
            max_length=MAX_CONSISTENCY_LINES,
            description="add a consistency proof line from each of these sizes",
        ),
    ] = None,
) -> StreamingResponse:
    """The whole log up to a checkpoint, as an offline-verifiable bundle, streamed in chunks."""
    plan = await service.plan_export(session, size=size, consistency_from=consistency_from or [])
    await session.close()  # the stream reads in short transactions of its own
    db: Database = request.app.state.db
    name = _SAFE_NAME.sub("_", plan.checkpoint.origin)
    return StreamingResponse(
        service.export_bundle(db.session, plan),
        media_type=BUNDLE_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="audit-{name}-{plan.size}.jsonl"',
            "Cache-Control": "no-store",
        },
    )
