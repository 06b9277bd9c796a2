"""DSSE envelopes: PAE, parsing strictness, signatures."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from broker.core import crypto
from broker.core.errors import BadBase64, BadSignature, SchemaViolation
from broker.core.ids import is_uuid7, uuid7
from broker.envelopes import dsse


def test_pae_matches_the_dsse_specification_example() -> None:
    # DSSE protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_sign_parse_verify_and_countersign() -> None:
    sender = crypto.Signer(crypto.generate_signing_key()[0])
    node = crypto.Signer(crypto.generate_signing_key()[0])
    env = dsse.sign_envelope(b'{"a":1}', sender)
    parsed = dsse.parse_envelope(env.to_dict())
    dsse.verify_signature(parsed, 0, sender.public_key)
    counter = dsse.add_signature(parsed, node)
    dsse.verify_signature(counter, 1, node.public_key)
    assert counter.digest == parsed.digest
    with pytest.raises(BadSignature):
        dsse.verify_signature(counter, 1, sender.public_key)
    with pytest.raises(BadSignature):
        dsse.verify_signature(counter, 2, sender.public_key)


def test_a_changed_payload_type_breaks_the_signature() -> None:
    sender = crypto.Signer(crypto.generate_signing_key()[0])
    env = dsse.sign_envelope(b"{}", sender).to_dict()
    env["payloadType"] = "application/json"
    with pytest.raises(BadSignature):
        dsse.verify_signature(dsse.parse_envelope(env), 0, sender.public_key)


def test_only_verification_or_the_nodes_signing_makes_a_verified_envelope() -> None:
    sender = crypto.Signer(crypto.generate_signing_key()[0])
    signed = dsse.sign_envelope(b'{"a":1}', sender)
    assert isinstance(signed, dsse.VerifiedEnvelope)
    unsafe = dsse.parse_envelope(signed.to_dict())
    assert not isinstance(unsafe, dsse.VerifiedEnvelope)
    with pytest.raises(TypeError):
        dsse.VerifiedEnvelope(unsafe, object())
    with pytest.raises(TypeError):
        dsse.VerifiedEnvelope(unsafe, None)
    with pytest.raises(ValueError, match="InitVar"):
        dataclasses.replace(signed, envelope=unsafe)  # type: ignore[call-arg]  # mypy refuses it too
    verified = dsse.verify_signature(unsafe, 0, sender.public_key)
    assert isinstance(verified, dsse.VerifiedEnvelope)
    assert verified.to_dict() == signed.to_dict()
    assert verified.digest == unsafe.digest
    # Countersigning adds no trust: an unchecked envelope stays unchecked.
    node = crypto.Signer(crypto.generate_signing_key()[0])
    assert not isinstance(dsse.add_signature(unsafe, node), dsse.VerifiedEnvelope)
    assert isinstance(dsse.add_signature(verified, node), dsse.VerifiedEnvelope)


def test_a_tampered_envelope_gives_no_verified_envelope() -> None:
    sender = crypto.Signer(crypto.generate_signing_key()[0])
    data = dsse.sign_envelope(b'{"amount":1}', sender).to_dict()
    data["payload"] = base64.b64encode(b'{"amount":9}').decode()
    tampered = dsse.parse_envelope(data)
    verified = None
    with pytest.raises(BadSignature):
        verified = dsse.verify_signature(tampered, 0, sender.public_key)
    assert verified is None


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([], SchemaViolation),
        (
            {"payloadType": "", "payload": "", "signatures": [{"keyid": "k", "sig": ""}]},
            SchemaViolation,
        ),
        (
            {"payloadType": "t", "payload": 1, "signatures": [{"keyid": "k", "sig": ""}]},
            SchemaViolation,
        ),
        ({"payloadType": "t", "payload": "", "signatures": []}, SchemaViolation),
        ({"payloadType": "t", "payload": "", "signatures": ["x"]}, SchemaViolation),
        (
            {"payloadType": "t", "payload": "", "signatures": [{"keyid": "", "sig": ""}]},
            SchemaViolation,
        ),
        (
            {"payloadType": "t", "payload": "a-b_", "signatures": [{"keyid": "k", "sig": ""}]},
            BadBase64,
        ),
        (
            {"payloadType": "t", "payload": "", "signatures": [{"keyid": "k", "sig": "%%"}]},
            BadBase64,
        ),
    ],
)
def test_parse_refuses_malformed_envelopes(data: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        dsse.parse_envelope(data)


def test_base64_must_be_standard_and_padded() -> None:
    assert dsse.b64decode_strict(base64.b64encode(b"ab").decode(), field_name="x") == b"ab"
    with pytest.raises(BadBase64):
        dsse.b64decode_strict("YWI", field_name="x")


def test_uuid7_is_version_7_and_ordered() -> None:
    ids = [uuid7() for _ in range(2000)]
    assert all(is_uuid7(i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
