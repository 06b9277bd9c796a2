"""DSSE envelopes (the Dead Simple Signing Envelope of in-toto and sigstore), Ed25519-signed.

An envelope is ``{"payloadType", "payload" (standard base64), "signatures": [{"keyid", "sig"}]}``
and every signature is Ed25519 over ``PAE(payloadType, payload)``:
``"DSSEv1" SP len(type) SP type SP len(body) SP body``. The signed bytes are the payload bytes,
so no JSON canonicalisation is needed.

``parse_envelope`` only checks structure and returns an ``UnsafeEnvelope``: **its signatures
have not been checked, and nothing in it may be trusted** until ``verify_signature`` passes.
``verify_signature`` answers a ``VerifiedEnvelope``, and so do ``sign_envelope`` and
``add_signature`` (the node's own signing, of a verified envelope): nothing else can make one
(its constructor refuses any caller without this module's private token), so a function that
takes a ``VerifiedEnvelope`` (``messages.accept``, the adapters' ``Outgoing``) cannot be handed
an unchecked envelope without mypy refusing it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import InitVar, dataclass, field
from typing import Any, overload

import orjson

from broker.core import crypto
from broker.core.errors import BadBase64, BadSignature, MalformedJSON, SchemaViolation

PAYLOAD_TYPE = "application/vnd.palermo.message+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def b64decode_strict(value: str, *, field_name: str) -> bytes:
    """Standard base64 with padding, nothing else. Raises BadBase64 naming the field."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise BadBase64(f"{field_name} is not valid base64", field=field_name) from exc


def b64encode(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class UnsafeEnvelope:
    """A structurally valid envelope. **Its signatures are unchecked: do not trust it.**"""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]
    digest: str = field(default="")

    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)

    def to_dict(self) -> dict[str, Any]:
        return {
            "payloadType": self.payload_type,
            "payload": b64encode(self.payload),
            "signatures": [{"keyid": s.keyid, "sig": b64encode(s.sig)} for s in self.signatures],
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


_VERIFIED = object()
"""The token only this module holds: what ``VerifiedEnvelope``'s constructor asks for."""


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """An envelope one of whose signatures verified under the key its verifier chose (the
    sender's at ingress, the node's for a stored envelope), or that the node signed itself.

    Only ``verify_signature``, ``sign_envelope`` and ``add_signature`` make one: constructing
    it elsewhere raises TypeError (and ``dataclasses.replace`` cannot copy the token)."""

    envelope: UnsafeEnvelope
    token: InitVar[object]

    def __post_init__(self, token: object) -> None:
        if token is not _VERIFIED:
            raise TypeError(
                "a VerifiedEnvelope comes only from dsse.verify_signature or the node's signing"
            )

    @property
    def payload_type(self) -> str:
        return self.envelope.payload_type

    @property
    def payload(self) -> bytes:
        return self.envelope.payload

    @property
    def signatures(self) -> tuple[Signature, ...]:
        return self.envelope.signatures

    @property
    def digest(self) -> str:
        return self.envelope.digest

    def signed_bytes(self) -> bytes:
        return self.envelope.signed_bytes()

    def to_dict(self) -> dict[str, Any]:
        return self.envelope.to_dict()

    def to_json(self) -> bytes:
        return self.envelope.to_json()


Envelope = UnsafeEnvelope | VerifiedEnvelope
"""Either kind, where only the envelope's content is read (never trusted)."""


def _unsafe(envelope: Envelope) -> UnsafeEnvelope:
    return envelope.envelope if isinstance(envelope, VerifiedEnvelope) else envelope


def envelope_digest(payload_type: str, payload: bytes) -> str:
    """SHA-256 of the signed bytes, in hex: what identifies an envelope's content."""
    return hashlib.sha256(pae(payload_type, payload)).hexdigest()


def parse_envelope(data: Any) -> UnsafeEnvelope:
    """Check an envelope's shape. Raises SchemaViolation or BadBase64 naming the field."""
    if not isinstance(data, dict):
        raise SchemaViolation("an envelope is a JSON object", field="$")
    unknown = set(data) - {"payloadType", "payload", "signatures"}
    if unknown:
        raise SchemaViolation(f"unknown envelope field {sorted(unknown)[0]!r}", field="$")
    payload_type, payload, sigs = (
        data.get("payloadType"),
        data.get("payload"),
        data.get("signatures"),
    )
    if not isinstance(payload_type, str) or not payload_type:
        raise SchemaViolation("payloadType must be a non-empty string", field="payloadType")
    if not isinstance(payload, str):
        raise SchemaViolation("payload must be a base64 string", field="payload")
    if not isinstance(sigs, list) or not sigs:
        raise SchemaViolation("signatures must be a non-empty list", field="signatures")
    parsed = []
    for i, sig in enumerate(sigs):
        where = f"signatures[{i}]"
        if not isinstance(sig, dict) or set(sig) - {"keyid", "sig"}:
            raise SchemaViolation(f"{where} must be an object with keyid and sig", field=where)
        keyid, value = sig.get("keyid"), sig.get("sig")
        if not isinstance(keyid, str) or not keyid or not isinstance(value, str):
            raise SchemaViolation(f"{where} needs a string keyid and sig", field=where)
        parsed.append(Signature(keyid, b64decode_strict(value, field_name=f"{where}.sig")))
    body = b64decode_strict(payload, field_name="payload")
    return UnsafeEnvelope(payload_type, body, tuple(parsed), envelope_digest(payload_type, body))


def parse_envelope_json(raw: bytes) -> UnsafeEnvelope:
    """Raises MalformedJSON, SchemaViolation or BadBase64."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"envelope is not valid JSON: {exc}") from exc
    return parse_envelope(data)


def verify_signature(envelope: Envelope, index: int, public_key: bytes) -> VerifiedEnvelope:
    """The envelope, verified: raises BadSignature unless signature ``index`` verifies under
    ``public_key``."""
    unsafe = _unsafe(envelope)
    if index >= len(unsafe.signatures):
        raise BadSignature(f"there is no signature {index}", field="signatures")
    signature = unsafe.signatures[index]
    try:
        crypto.verify(public_key, unsafe.signed_bytes(), signature.sig)
    except crypto.CryptoError as exc:
        raise BadSignature(
            f"signature {index} (keyid {signature.keyid}) does not verify",
            field=f"signatures[{index}]",
        ) from exc
    return VerifiedEnvelope(unsafe, _VERIFIED)


def sign_envelope(
    payload: bytes, signer: crypto.Signer, *, payload_type: str = PAYLOAD_TYPE
) -> VerifiedEnvelope:
    """A new envelope carrying one signature by ``signer``."""
    sig = signer.sign(pae(payload_type, payload))
    unsafe = UnsafeEnvelope(
        payload_type,
        payload,
        (Signature(signer.key_id, sig),),
        envelope_digest(payload_type, payload),
    )
    return VerifiedEnvelope(unsafe, _VERIFIED)


@overload
def add_signature(envelope: VerifiedEnvelope, signer: crypto.Signer) -> VerifiedEnvelope: ...
@overload
def add_signature(envelope: UnsafeEnvelope, signer: crypto.Signer) -> UnsafeEnvelope: ...
def add_signature(envelope: Envelope, signer: crypto.Signer) -> Envelope:
    """The same envelope with one more signature (the node's countersignature): verified if
    ``envelope`` was, and unchecked otherwise (signing adds no trust to what it signs)."""
    unsafe = _unsafe(envelope)
    sig = Signature(signer.key_id, signer.sign(unsafe.signed_bytes()))
    signed = UnsafeEnvelope(
        unsafe.payload_type, unsafe.payload, (*unsafe.signatures, sig), unsafe.digest
    )
    return VerifiedEnvelope(signed, _VERIFIED) if isinstance(envelope, VerifiedEnvelope) else signed
