"""broker.core.crypto and tokens against third-party vectors.

Provenance of each vector file: tests/vectors/crypto/PROVENANCE.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from broker.core import crypto
from broker.core.tokens import TokenError, decode_token

VECTORS = Path(__file__).parents[2] / "vectors" / "crypto"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


RFC8032 = _load("rfc8032_ed25519.json")["vectors"]


@pytest.mark.parametrize("v", RFC8032, ids=[v["name"] for v in RFC8032])
def test_rfc8032_sign_and_verify(v: dict[str, str]) -> None:
    seed = bytes.fromhex(v["secret_key"])
    message = bytes.fromhex(v["message"])
    assert crypto.signing_public_key(seed).hex() == v["public_key"]
    assert crypto.sign(seed, message).hex() == v["signature"]
    signer = crypto.Signer(seed)
    assert signer.sign(message).hex() == v["signature"]
    crypto.verify(bytes.fromhex(v["public_key"]), message, bytes.fromhex(v["signature"]))


WYCHEPROOF = [
    (group["publicKey"]["pk"], test)
    for group in _load("ed25519_test.json")["testGroups"]
    for test in group["tests"]
]


@pytest.mark.parametrize(("pk", "test"), WYCHEPROOF, ids=[f"tc{t['tcId']}" for _, t in WYCHEPROOF])
def test_wycheproof_ed25519_verify(pk: str, test: dict[str, Any]) -> None:
    args = (bytes.fromhex(pk), bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"]))
    if test["result"] == "valid":
        crypto.verify(*args)
    else:
        with pytest.raises(crypto.CryptoError):
            crypto.verify(*args)


def _sealed_refs() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in (VECTORS / "sealed_box_ref.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sk, pk, pt, ct = line.split("\t")[:4]
        rows.append((sk, pk, pt.split(":", 1)[1], ct.split(":", 1)[1]))
    return rows


@pytest.mark.parametrize(("sk", "pk", "pt", "ct"), _sealed_refs())
def test_pynacl_sealed_box_reference(sk: str, pk: str, pt: str, ct: str) -> None:
    assert crypto.box_public_key(bytes.fromhex(sk)).hex() == pk
    assert crypto.unseal(bytes.fromhex(sk), bytes.fromhex(ct)) == bytes.fromhex(pt)
    flipped = bytearray(bytes.fromhex(ct))
    flipped[-1] ^= 1
    with pytest.raises(crypto.CryptoError):
        crypto.unseal(bytes.fromhex(sk), bytes(flipped))


LOW_ORDER = [
    t
    for g in _load("x25519_test.json")["testGroups"]
    for t in g["tests"]
    if "LowOrderPublic" in t["flags"]
]


@pytest.mark.parametrize("test", LOW_ORDER, ids=[f"tc{t['tcId']}" for t in LOW_ORDER])
def test_no_message_key_is_sealed_to_a_low_order_point(test: dict[str, Any]) -> None:
    # Wycheproof calls these "acceptable" for raw X25519; a sealed box to one would leak.
    with pytest.raises(crypto.CryptoError):
        crypto.seal(bytes.fromhex(test["public"]), b"message key")


def test_secretbox_roundtrip_and_tamper() -> None:
    key = crypto.random_key()
    box = crypto.secretbox_encrypt(key, b"body")
    assert crypto.secretbox_decrypt(key, box) == b"body"
    with pytest.raises(crypto.CryptoError):
        crypto.secretbox_decrypt(crypto.random_key(), box)


def test_password_hashes() -> None:
    h = crypto.hash_password("a long enough password")
    assert crypto.check_password(h, "a long enough password")
    assert not crypto.check_password(h, "another password")
    assert not crypto.check_password(None, "a long enough password")
    assert not crypto.check_password("not-a-hash", "x")


def test_rfc7515_hs256_vector_is_refused_by_our_pinned_checks() -> None:
    # The RFC's token has a valid HS256 signature, but no audience and an exp in 2011:
    # our decoder must refuse it even with the right key.
    v = _load("rfc7515_appendix_A1_hs256.json")
    import base64

    key = base64.urlsafe_b64decode(v["jwk"]["k"] + "==")
    from jose import jws

    assert (
        json.loads(jws.verify(v["compact"], key, algorithms=["HS256"])) == v["expected"]["claims"]
    )
    with pytest.raises(TokenError):
        decode_token(v["compact"], secret=key, issuer="joe", audience="palermo-api")


def test_hs256_key_is_the_secret_bytes_themselves() -> None:
    # RFC 7518 sec. 3.2: the HMAC key is the secret's octets. The RFC 7515 A.1 key holds bytes
    # above 0x7f, so a key passed through any text encoding would sign with other bytes, and
    # a verifier configured with the documented secret would refuse our tokens.
    import base64
    import hashlib
    import hmac

    from broker.core.tokens import issue_token

    v = _load("rfc7515_appendix_A1_hs256.json")
    key = base64.urlsafe_b64decode(v["jwk"]["k"] + "==")
    assert any(b > 0x7F for b in key)
    token, _ = issue_token(
        secret=key,
        issuer="palermo",
        audience="palermo-api",
        subject="acc-1",
        participant_id="it.mdg",
        roles=frozenset({"officer"}),
        kind="person",
        ttl_seconds=60,
    )
    header, payload, signature = token.split(".")
    expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature
    claims = decode_token(token, secret=key, issuer="palermo", audience="palermo-api")
    assert claims.subject == "acc-1"
