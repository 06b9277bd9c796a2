"""RFC 9421 HTTP Message Signatures: the RFC's Ed25519 example, and what a verifier refuses."""

from __future__ import annotations

import base64

import pytest

from adapters import httpsig
from broker.core.crypto import Signer

# RFC 9421 appendix B.1.4 (test-key-ed25519, the JWK "d" and "x") and B.2.6 (signing a request
# using ed25519): the request of B.2, the covered components, and the signature printed there.
B14_SEED = base64.urlsafe_b64decode("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU=")
B14_PUBLIC = base64.urlsafe_b64decode("JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs=")
B2_URL = "http://example.com/foo?param=Value&Pet=dog"
B2_HEADERS = [
    ("Host", "example.com"),
    ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
    ("Content-Type", "application/json"),
    (
        "Content-Digest",
        "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWX"
        "vJwew==:",
    ),
    ("Content-Length", "18"),
]
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length")'
    ';created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw"
    "==:"
)
B26_BASE = (
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n'
    '"@method": POST\n'
    '"@path": /foo\n'
    '"@authority": example.com\n'
    '"content-type": application/json\n'
    '"content-length": 18\n'
    '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
    '"content-length");created=1618884473;keyid="test-key-ed25519"'
)


def test_rfc9421_b26_signature_base_and_signature() -> None:
    assert Signer(B14_SEED).public_key == B14_PUBLIC
    parsed = httpsig.parse_dictionary(B26_INPUT)["sig-b26"]
    assert not isinstance(parsed, bytes)
    components, params = parsed
    params_text = httpsig.serialize_signature_params(components, list(params.items()))
    base = httpsig.signature_base(
        components, params_text, method="POST", url=B2_URL, headers=B2_HEADERS
    )
    assert base.decode() == B26_BASE
    signature = Signer(B14_SEED).sign(base)  # Ed25519 is deterministic
    assert f"sig-b26=:{base64.b64encode(signature).decode()}:" == B26_SIGNATURE


def test_rfc9421_b26_verifies_and_a_changed_request_does_not() -> None:
    headers = [*B2_HEADERS, ("Signature-Input", B26_INPUT), ("Signature", B26_SIGNATURE)]
    keys = {"test-key-ed25519": B14_PUBLIC}
    verified = httpsig.verify(
        method="POST",
        url=B2_URL,
        headers=headers,
        body=None,
        key_for=keys.get,
        required=("@method", "@path", "@authority"),
        tag=None,
        now=1618884473 + 10,
    )
    assert (verified.label, verified.keyid, verified.created) == (
        "sig-b26",
        "test-key-ed25519",
        1618884473,
    )
    with pytest.raises(httpsig.SignatureError, match="does not verify"):
        httpsig.verify(
            method="PUT",
            url=B2_URL,
            headers=headers,
            body=None,
            key_for=keys.get,
            required=("@method",),
            tag=None,
            now=1618884473,
        )


def test_rfc9530_content_digest_example() -> None:
    # RFC 9530 section 2: the sha-256 digest of {"hello": "world"}.
    assert httpsig.content_digest(b'{"hello": "world"}') == (
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )


SIGNER = Signer(bytes(range(32)))
URL = "https://agency.example/palermo/hook"
BODY = b'{"payloadType":"x","payload":"","signatures":[]}'
NOW = 1_800_000_000


def _signed(**over: object) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    headers.update(
        httpsig.sign(method="POST", url=URL, headers=headers, body=BODY, signer=SIGNER, created=NOW)
    )
    headers.update({k: str(v) for k, v in over.items()})
    return headers


def _verify(
    headers: dict[str, str], *, body: bytes = BODY, url: str = URL, now: int = NOW
) -> httpsig.Verified:
    return httpsig.verify(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        key_for={SIGNER.key_id: SIGNER.public_key}.get,
        now=now,
    )


def test_round_trip() -> None:
    verified = _verify(_signed())
    assert verified.keyid == SIGNER.key_id
    assert verified.components == httpsig.REQUEST_COMPONENTS


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"body": b"{}"}, "Content-Digest does not match"),
        ({"url": "https://agency.example/palermo/other"}, "does not verify"),
        ({"now": NOW + 301}, "outside the accepted window"),
        ({"now": NOW - 120}, "outside the accepted window"),
    ],
)
def test_a_changed_request_is_refused(change: dict[str, object], why: str) -> None:
    with pytest.raises(httpsig.SignatureError, match=why):
        _verify(_signed(), **change)  # type: ignore[arg-type]


def test_unknown_key_missing_headers_and_uncovered_components_are_refused() -> None:
    with pytest.raises(httpsig.SignatureError, match="no HTTP message signature"):
        _verify({"Content-Type": "application/json"})
    headers = _signed()
    with pytest.raises(httpsig.SignatureError, match="unknown key"):
        httpsig.verify(
            method="POST", url=URL, headers=headers, body=BODY, key_for=lambda _: None, now=NOW
        )
    # A signature that covers less than the verifier requires is refused, even if it verifies.
    partial = {"Content-Type": "application/json"}
    partial.update(
        httpsig.sign(
            method="POST",
            url=URL,
            headers=partial,
            body=BODY,
            signer=SIGNER,
            created=NOW,
            components=("@method", "content-digest"),
        )
    )
    with pytest.raises(httpsig.SignatureError, match="does not cover @target-uri"):
        _verify(partial)


def test_another_algorithm_is_refused_whatever_the_sender_says() -> None:
    headers = _signed()
    headers["Signature-Input"] = headers["Signature-Input"].replace(
        'alg="ed25519"', 'alg="hmac-sha256"'
    )
    with pytest.raises(httpsig.SignatureError, match="not accepted"):
        _verify(headers)


@pytest.mark.parametrize(
    "header",
    ['sig=("@method"', "sig=:not base64!:", 'sig=("a";p=1)', "=()", 'sig=("@method"),'],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(httpsig.SignatureError):
        httpsig.parse_dictionary(header)


def test_structured_field_types_survive_a_round_trip() -> None:
    text = 'x=("@method" "content-digest");created=1;keyid="k";alg=ed25519;flag;off=?0'
    parsed = httpsig.parse_dictionary(text)["x"]
    assert not isinstance(parsed, bytes)
    components, params = parsed
    assert "x=" + httpsig.serialize_signature_params(components, list(params.items())) == text
