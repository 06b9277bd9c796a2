from __future__ import annotations

import base64
import datetime as dt

from fastapi import APIRouter, status

from broker.http import Admin, CallerDep, NodeDep, SessionDep
from broker.participants import service
from broker.participants.models import Participant, ParticipantKey
from broker.participants.schemas import (
    KeyCreate,
    KeyRead,
    KeyRevoke,
    KeyRotate,
    ParticipantCreate,
    ParticipantList,
    ParticipantRead,
    ParticipantUpdate,
)

router = APIRouter(prefix="/v1/participants", tags=["participants"])


def key_read(key: ParticipantKey) -> KeyRead:
    return KeyRead(
        kid=key.kid,
        purpose=key.purpose,
        algorithm=key.algorithm,
        public_key=base64.b64encode(key.public_key).decode(),
        custodial=key.custodial,
        not_before=key.not_before,
        not_after=key.not_after,
        revoked_at=key.revoked_at,
        revocation_reason=key.revocation_reason,
    )


def participant_read(p: Participant, keys: list[ParticipantKey]) -> ParticipantRead:
    return ParticipantRead(
        id=p.id,
        kind=p.kind,
        jurisdiction=p.jurisdiction,
        display_name=p.display_name,
        status=p.status,
        adapter=p.adapter,
        keys=[key_read(k) for k in keys],
    )


@router.get("", response_model=ParticipantList)
async def list_participants(session: SessionDep, _caller: CallerDep) -> ParticipantList:
    keys = await service.keys_by_participant(session)
    return ParticipantList(
        items=[
            participant_read(p, keys.get(p.id, []))
            for p in await service.list_participants(session)
        ]
    )


@router.post("", response_model=ParticipantRead, status_code=status.HTTP_201_CREATED)
async def register_participant(
    body: ParticipantCreate, session: SessionDep, node: NodeDep, caller: Admin
) -> ParticipantRead:
    p = await service.register_participant(
        session,
        node=node,
        participant_id=body.id,
        kind=body.kind.value,
        display_name=body.display_name,
        adapter=body.adapter,
        actor=caller.actor(),
    )
    await session.commit()
    return participant_read(p, [])


@router.get("/{participant_id}", response_model=ParticipantRead)
async def get_participant(
    participant_id: str, session: SessionDep, _caller: CallerDep
) -> ParticipantRead:
    p = await service.get_participant(session, participant_id)
    return participant_read(p, await service.keys_of(session, participant_id))


@router.patch("/{participant_id}", response_model=ParticipantRead)
async def update_participant(
    participant_id: str, body: ParticipantUpdate, session: SessionDep, node: NodeDep, caller: Admin
) -> ParticipantRead:
    p = await service.update_participant(
        session,
        node=node,
        participant_id=participant_id,
        display_name=body.display_name,
        status=body.status.value if body.status else None,
        actor=caller.actor(),
    )
    await session.commit()
    return participant_read(p, await service.keys_of(session, participant_id))


@router.post("/{participant_id}/keys", response_model=KeyRead, status_code=status.HTTP_201_CREATED)
async def add_key(
    participant_id: str, body: KeyCreate, session: SessionDep, node: NodeDep, caller: Admin
) -> KeyRead:
    public = service.decode_public_key(body.public_key) if body.public_key is not None else None
    made = await service.add_key(
        session,
        node=node,
        participant_id=participant_id,
        purpose=body.purpose,
        public_key=public,
        generate=body.generate,
        not_before=body.not_before,
        not_after=body.not_after,
        actor=caller.actor(),
    )
    await session.commit()
    return key_read(made.key)


@router.post(
    "/{participant_id}/keys/rotate", response_model=KeyRead, status_code=status.HTTP_201_CREATED
)
async def rotate_key(
    participant_id: str, body: KeyRotate, session: SessionDep, node: NodeDep, caller: Admin
) -> KeyRead:
    """Add a new key and keep the current ones of its purpose valid for ``grace_seconds``
    more (what they signed keeps verifying until then); the new key is returned."""
    public = service.decode_public_key(body.public_key) if body.public_key is not None else None
    made = await service.rotate_key(
        session,
        node=node,
        participant_id=participant_id,
        purpose=body.purpose,
        grace=dt.timedelta(seconds=body.grace_seconds),
        public_key=public,
        actor=caller.actor(),
    )
    await session.commit()
    return key_read(made.key)


@router.post("/{participant_id}/keys/{kid}/revoke", response_model=KeyRead)
async def revoke_key(
    participant_id: str,
    kid: str,
    body: KeyRevoke,
    session: SessionDep,
    node: NodeDep,
    caller: Admin,
) -> KeyRead:
    key = await service.revoke_key(
        session,
        node=node,
        participant_id=participant_id,
        kid=kid,
        reason=body.reason,
        actor=caller.actor(),
    )
    await session.commit()
    return key_read(key)
