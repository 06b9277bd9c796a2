"""What an answer says of an envelope it accepted: its type, the SHA-256 of its payload and
its signatures, never the payload.

An answer that carried the payload would hand out content without the consultation leaf
LED art. 25 requires (a forward's payload is the original's content; a case event's is the
request): the payload is read at ``GET /v1/messages/{id}/content?justification=``, which
logs it. The signatures are all a sender needs to keep the chain of custody (its own, then
the node's countersignature over the same PAE).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from pydantic import BaseModel, Field


class SealSignature(BaseModel):
    keyid: str
    sig: str = Field(description="base64 Ed25519 signature over the DSSE PAE of the payload")


class EnvelopeSeal(BaseModel):
    payload_type: str
    payload_sha256: str = Field(description="hex SHA-256 of the signed payload bytes")
    signatures: list[SealSignature] = Field(
        description="the sender's signature, then the node's countersignature"
    )


def seal_of(envelope: dict[str, Any]) -> EnvelopeSeal:
    """The seal of a DSSE envelope ``{"payloadType", "payload", "signatures"}``."""
    payload = base64.b64decode(envelope["payload"])
    return EnvelopeSeal(
        payload_type=envelope["payloadType"],
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        signatures=[SealSignature(keyid=s["keyid"], sig=s["sig"]) for s in envelope["signatures"]],
    )
