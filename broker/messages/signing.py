"""The signature checks of a submission, and the node's signing of a draft.

``verified_submission`` is the one way to get a payload the ingress path may trust: a
self-signed envelope whose one signature verifies under a signing key of the payload's sender
valid now, or a draft (``{"draft": {...}}``) the node signs with the caller's participant's
custodial key. Nothing is decided on an envelope before its signature verifies; a payload is
validated against ``MessagePayload`` and every error names its field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from broker.core import crypto
from broker.core.context import Caller, NodeContext
from broker.core.errors import (
    Forbidden,
    MalformedJSON,
    PayloadTooLarge,
    SchemaViolation,
    UnknownKey,
)
from broker.core.ids import uuid7
from broker.envelopes import dsse
from broker.envelopes.schemas import PARTICIPANT_ID_PATTERN, DraftPayload, MessagePayload
from broker.messages.keys import SigningKey, check_signing_key, signing_key
from broker.participants.models import KeyPurpose
from broker.participants.service import current_key, keys_of, open_custodial_key


def schema_error(exc: ValidationError, prefix: str) -> SchemaViolation:
    errors = [
        {
            "field": ".".join(str(p) for p in (prefix, *err["loc"]) if p != ""),
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0]
    return SchemaViolation(f"{first['field']}: {first['message']}", errors=errors)


def parse_payload(raw: bytes) -> MessagePayload:
    """Raises MalformedJSON or SchemaViolation naming the field."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"payload is not valid JSON: {exc}") from exc
    return validate_payload(data)


def validate_payload(data: Any) -> MessagePayload:
    try:
        return MessagePayload.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc, "payload") from exc


NOT_JSON = object()


def peek(payload: bytes) -> tuple[Any, str | None]:
    """The unverified payload's JSON (``NOT_JSON`` if it is none) and the recipient it
    names, only to read the recipient's facts in the same statement as the signing key.
    Nothing is decided on either before the signature verifies; the JSON is then validated
    without being decoded twice."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return NOT_JSON, None
    recipient = data.get("recipient") if isinstance(data, dict) else None
    if isinstance(recipient, str) and _PARTICIPANT_ID.fullmatch(recipient):
        return data, recipient
    return data, None  # not an id: the payload's validation will say so, in its turn


_PARTICIPANT_ID = re.compile(PARTICIPANT_ID_PATTERN)


class Signed(NamedTuple):
    """A submission whose sender's signature verified (or that the node signed for the
    caller): what ``accept`` takes."""

    envelope: dsse.VerifiedEnvelope
    payload: MessagePayload
    kid: str
    """The id of the key that signed it."""


async def verified_submission(
    session: AsyncSession, *, node: NodeContext, caller: Caller, data: Any, now: dt.datetime
) -> Signed:
    """The envelope, its parsed payload and the signing key id, once the sender's signature
    verified under a key of the sender's that is valid now (or the node signed a draft)."""
    if isinstance(data, dict) and "draft" in data:
        envelope, payload = await _sign_draft(session, node=node, caller=caller, data=data, now=now)
        return Signed(envelope, payload, envelope.signatures[0].keyid)
    unsafe = checked_envelope(node, data)
    kid = unsafe.signatures[0].keyid
    return verified_payload(unsafe, await signing_key(session, kid), now=now)


def checked_envelope(node: NodeContext, data: Any) -> dsse.UnsafeEnvelope:
    envelope = dsse.parse_envelope(data)
    if envelope.payload_type != dsse.PAYLOAD_TYPE:
        raise SchemaViolation(f"payloadType must be {dsse.PAYLOAD_TYPE}", field="payloadType")
    if len(envelope.signatures) != 1:
        raise SchemaViolation("submit exactly one signature, the sender's", field="signatures")
    if len(envelope.payload) > node.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload of {len(envelope.payload)} bytes is over the limit of "
            f"{node.max_payload_bytes}"
        )
    return envelope


def verified_payload(
    envelope: dsse.UnsafeEnvelope,
    key: SigningKey | None,
    *,
    now: dt.datetime,
    decoded: Any = NOT_JSON,
) -> Signed:
    """The envelope and its payload, once the envelope's one signature verified under
    ``key``, a signing key of the payload's sender valid now. ``decoded`` is the payload's
    JSON if ``peek`` decoded it already."""
    kid = envelope.signatures[0].keyid
    if key is None:
        raise UnknownKey(f"no registered key has id {kid}", field="signatures[0].keyid")
    verified = dsse.verify_signature(envelope, 0, key.public_key)
    payload = parse_payload(envelope.payload) if decoded is NOT_JSON else validate_payload(decoded)
    check_signing_key(key, sender=payload.sender, now=now, kid=kid)
    return Signed(verified, payload, kid)


async def _sign_draft(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    data: dict[str, Any],
    now: dt.datetime,
) -> tuple[dsse.VerifiedEnvelope, MessagePayload]:
    if set(data) != {"draft"}:
        raise SchemaViolation('a draft submission is {"draft": {...}} and nothing else', field="$")
    try:
        draft = DraftPayload.model_validate(data["draft"])
    except ValidationError as exc:
        raise schema_error(exc, "draft") from exc
    key = current_key(
        await keys_of(session, caller.participant_id), KeyPurpose.SIGNING, custodial=True
    )
    if key is None:
        raise Forbidden(
            f"{caller.participant_id} has no custodial signing key: sign the envelope yourself"
        )
    payload = MessagePayload.model_validate(
        {
            **draft.model_dump(mode="json", exclude_none=True),
            "id": str(uuid7()),
            "sender": caller.participant_id,
            "created_at": now.isoformat(),
        }
    )
    raw = orjson.dumps(payload.model_dump(mode="json", exclude_none=True))
    if len(raw) > node.max_payload_bytes:
        raise PayloadTooLarge(
            f"payload of {len(raw)} bytes is over the limit of {node.max_payload_bytes}"
        )
    signer = crypto.Signer(open_custodial_key(node, key))
    return dsse.sign_envelope(raw, signer), payload


__all__ = [
    "NOT_JSON",
    "Signed",
    "checked_envelope",
    "parse_payload",
    "peek",
    "schema_error",
    "validate_payload",
    "verified_payload",
    "verified_submission",
]
