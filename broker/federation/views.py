"""Federation API: this node's signed directory, and the peers whose directories it applies.

Who may read the directory: a configured peer node, in a request it signed (RFC 9421, covering
@method and @target-uri) under its node key, as the federation endpoint checks; or an
administrator or oversight account of this node with an access token. The participant list is
operational information, so nobody else (fail closed). Peers are configured and synced by
administrators; oversight may list them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from adapters import httpsig
from adapters.destinations import rules_from
from broker.core.context import Caller
from broker.core.db import Database
from broker.core.errors import Forbidden
from broker.core.roles import Role
from broker.federation import service
from broker.federation.models import FederationPeer
from broker.federation.schemas import (
    DirectoryChanges,
    DirectoryEnvelope,
    PeerList,
    PeerRead,
    PeerUpdate,
    SyncList,
    SyncRead,
)
from broker.http import Admin, NodeDep, SessionDep, SettingsDep, get_caller, require_roles

router = APIRouter(prefix="/v1/federation", tags=["federation"])
AdminOrOversight = Annotated[Caller, Depends(require_roles(Role.ADMIN, Role.OVERSIGHT))]


def _peer_read(p: FederationPeer) -> PeerRead:
    return PeerRead(
        node_id=p.node_id,
        url=p.url,
        node_key_id=p.node_key_id,
        jurisdictions=list(p.jurisdictions or []),
        directory_serial=p.directory_serial,
        directory_issued_at=p.directory_issued_at,
        synced_at=p.synced_at,
        failures=p.failures,
        last_failure_at=p.last_failure_at,
        last_error=p.last_error,
    )


def _sync_read(r: service.SyncResult) -> SyncRead:
    return SyncRead(
        peer=r.peer,
        outcome=r.outcome,
        serial=r.serial,
        changes=DirectoryChanges(**r.changes.to_dict()) if r.changes else None,
        error=r.error,
    )


@router.get(
    "/directory",
    response_model=DirectoryEnvelope,
    responses={200: {"content": {"application/json": {}}}},
)
async def get_directory(
    request: Request, session: SessionDep, node: NodeDep, settings: SettingsDep
) -> Response:
    """This node's signed directory (a DSSE envelope: docs/api.md, "Federation"). For peer
    nodes, in a request signed under their node key; or for administrators and oversight."""
    if "signature" in request.headers or "signature-input" in request.headers:
        readers = await service.directory_readers(session)
        httpsig.verify(
            method=request.method,
            url=settings.public_url.rstrip("/") + request.url.path,
            headers=list(request.headers.items()),
            body=b"",
            key_for=readers.get,
            required=service.DIRECTORY_COMPONENTS,
        )
    else:
        caller = await get_caller(request, session, settings)
        if not caller.has_any(Role.ADMIN, Role.OVERSIGHT):
            raise Forbidden("the directory is for peer nodes, administrators and oversight")
    envelope = await service.build_directory(session, node=node)
    return Response(envelope.to_json(), media_type="application/json")


@router.get("/peers", response_model=PeerList)
async def list_peers(session: SessionDep, _caller: AdminOrOversight) -> PeerList:
    """The peer nodes configured here, with the state of their directories."""
    return PeerList(items=[_peer_read(p) for p in await service.list_peers(session)])


@router.put("/peers/{node_id}", response_model=PeerRead)
async def configure_peer(
    node_id: str,
    body: PeerUpdate,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    caller: Admin,
) -> PeerRead:
    """Register a peer node (its URL and node key, typed once), or change its URL."""
    peer = await service.configure_peer(
        session,
        node=node,
        node_id=node_id,
        url=body.url,
        node_key=body.node_key,
        jurisdictions=body.jurisdictions,
        rules=rules_from(settings),
        actor=caller.actor(),
    )
    await session.commit()
    return _peer_read(peer)


@router.post("/directory/sync", response_model=SyncList)
async def sync_directories(
    request: Request,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    _caller: Admin,
    peer: Annotated[str | None, Query(max_length=64)] = None,
) -> SyncList:
    """Fetch, verify and apply the peers' directories now (or only ``peer``'s), as beat does
    every PALERMO_FEDERATION_DIRECTORY_INTERVAL_SECONDS."""
    # The sync runs one transaction per peer, none held while a peer is fetched: end the
    # request's own (it only read the caller) so it holds no lock meanwhile.
    await session.commit()
    db: Database = request.app.state.db
    results = await service.sync_all(
        db, node=node, config=service.directory_config(settings), only=peer
    )
    return SyncList(items=[_sync_read(r) for r in results])
