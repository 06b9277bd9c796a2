"""Operators' delivery API: dead letters, and each participant's adapter."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response, status

from adapters import httpsig
from adapters.destinations import rules_from
from broker.core.errors import Forbidden, PolicyDenied
from broker.delivery import federation, service
from broker.delivery.schemas import (
    AdapterRead,
    AdapterUpdate,
    DeadLetterList,
    DeadLetterRead,
    FederationAccepted,
    FederationBatchRead,
    RequeueRead,
)
from broker.http import Admin, NodeDep, SessionDep, SettingsDep
from broker.messages import Refused
from broker.participants.service import get_participant

router = APIRouter(prefix="/v1", tags=["delivery"])


@router.get("/delivery/dead-letters", response_model=DeadLetterList)
async def list_dead_letters(
    session: SessionDep,
    _caller: Admin,
    recipient: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterList:
    """Messages whose delivery ran out of attempts (or was refused for good), oldest first."""
    rows = await service.list_dead_letters(session, recipient=recipient, limit=limit)
    return DeadLetterList(
        items=[
            DeadLetterRead(
                message_id=d.message_id,
                recipient=d.recipient_id,
                sender=d.sender_id,
                type=d.message_type,
                adapter=d.adapter,
                attempts=d.attempts,
                last_error=d.last_error,
                accepted_at=d.accepted_at,
                dead_lettered_at=d.dead_lettered_at,
            )
            for d in rows
        ]
    )


@router.post("/delivery/dead-letters/{message_id}/requeue", response_model=RequeueRead)
async def requeue_dead_letter(
    message_id: str, session: SessionDep, node: NodeDep, caller: Admin
) -> RequeueRead:
    """Give a dead-lettered message a fresh set of attempts (audited as message:requeued)."""
    ids = await service.requeue_dead_letters(
        session, node_id=node.node_id, actor=caller.actor(), message_ids=[message_id]
    )
    await session.commit()
    return RequeueRead(requeued=ids)


@router.get("/participants/{participant_id}/adapter", response_model=AdapterRead)
async def get_adapter(participant_id: str, session: SessionDep, _caller: Admin) -> AdapterRead:
    p = await get_participant(session, participant_id)
    return AdapterRead(participant_id=p.id, adapter=p.adapter, config=dict(p.adapter_config))


@router.put("/participants/{participant_id}/adapter", response_model=AdapterRead)
async def set_adapter(
    participant_id: str,
    body: AdapterUpdate,
    session: SessionDep,
    node: NodeDep,
    settings: SettingsDep,
    caller: Admin,
) -> AdapterRead:
    """Choose how messages reach this participant; the configuration is checked first."""
    p = await service.configure_adapter(
        session,
        node_id=node.node_id,
        participant_id=participant_id,
        adapter=body.adapter,
        config=body.config,
        rules=rules_from(settings),
        actor=caller.actor(),
    )
    await session.commit()
    return AdapterRead(participant_id=p.id, adapter=p.adapter, config=dict(p.adapter_config))


@router.post(
    "/federation/envelopes",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FederationAccepted,
    responses={200: {"model": FederationAccepted, "description": "the same envelope, seen before"}},
)
async def receive_forwarded(
    request: Request, session: SessionDep, node: NodeDep, settings: SettingsDep
) -> Response:
    """For peer nodes: an envelope forwarded by the node that accepted it, in a request that
    node signed (RFC 9421, Ed25519, covering @method, @target-uri, content-type and
    content-digest). Access tokens are not accepted here."""
    body = await request.body()
    peers, key_id = await _signed_by_peer(request, session, settings, body)
    outcome = await federation.accept_forwarded(
        session,
        node=node,
        body=body,
        peers=peers,
        max_age_seconds=settings.federation_max_age_seconds,
        request_key_id=key_id,
    )
    await session.commit()
    if isinstance(outcome, Refused):
        raise PolicyDenied(
            "; ".join(f"{r['rule']}: {r['text']}" for r in outcome.reasons),
            reasons=outcome.reasons,
            policy_pack=outcome.pack_hash,
            message_id=outcome.message_id,
        )
    return Response(
        orjson.dumps(outcome.to_dict(), option=orjson.OPT_UTC_Z),
        status_code=200 if outcome.duplicate else 202,
        media_type="application/json",
    )


@router.post(
    "/federation/batch",
    response_model=FederationBatchRead,
    responses={
        401: {"description": "the request is not signed by a configured peer node key"},
        403: {"description": "an access token instead of a peer node's signature"},
        413: {"description": "the body is over PALERMO_FEDERATION_BATCH_MAX_BYTES"},
        422: {"description": "not a batch, empty, or over PALERMO_FEDERATION_BATCH_MAX_ENVELOPES"},
    },
)
async def receive_forwarded_batch(
    request: Request, session: SessionDep, node: NodeDep, settings: SettingsDep
) -> Response:
    """For peer nodes: many forwarded envelopes in one request that node signed (RFC 9421, as
    for ``/federation/envelopes``), ``{"envelopes": [...]}``. Each envelope is accepted or
    refused on its own, exactly as the single endpoint would (a replayed one gets its first
    answer); the answer lists one result per envelope, in order. A request whose signature
    fails is refused whole, and nothing of it is stored."""
    body = await request.body()
    peers, key_id = await _signed_by_peer(request, session, settings, body)
    bodies = federation.parse_batch(body, max_envelopes=settings.federation_batch_max_envelopes)
    results = await federation.accept_forwarded_batch(
        session,
        node=node,
        bodies=bodies,
        peers=peers,
        max_age_seconds=settings.federation_max_age_seconds,
        request_key_id=key_id,
    )
    await session.commit()
    return Response(
        orjson.dumps(
            {"results": [r.to_dict(i) for i, r in enumerate(results)]},
            option=orjson.OPT_UTC_Z,
        ),
        media_type="application/json",
    )


async def _signed_by_peer(
    request: Request, session: SessionDep, settings: SettingsDep, body: bytes
) -> tuple[dict[str, federation.PeerNode], str]:
    """The peer nodes and the key id that signed this request (RFC 9421). Raises Forbidden
    (an access token instead), SignatureError (unsigned, unknown key, bad signature)."""
    if "signature" not in request.headers and "authorization" in request.headers:
        raise Forbidden("this endpoint takes requests signed by a peer node, not access tokens")
    peers = await federation.peer_nodes(session)
    verified = httpsig.verify(
        method=request.method,
        url=settings.public_url.rstrip("/") + request.url.path,
        headers=list(request.headers.items()),
        body=body,
        key_for=lambda kid: peers[kid].public_key if kid in peers else None,
    )
    return peers, verified.keyid
