"""HTTP Message Signatures (RFC 9421) with Ed25519, and Content-Digest (RFC 9530).

How the node signs what it pushes (webhook, peer) and how a receiver checks it. The subset:

- signature algorithm ``ed25519`` only (RFC 9421 section 3.3.6);
- covered components: derived ``@method``, ``@target-uri``, ``@authority``, ``@path``,
  ``@query``, ``@status``, and header fields by lower-case name (no component parameters);
- ``Signature-Input`` and ``Signature`` as RFC 8941 dictionaries; the parameters
  ``created``, ``expires``, ``nonce``, ``alg``, ``keyid``, ``tag``.

A verifier fixes what must be covered (``required``) and how old a signature may be; what the
sender lists can only add to that, never relax it. ``Content-Digest`` (``sha-256``) must match
the body when it is covered, and it must be covered whenever there is a body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from broker.core import crypto
from broker.core.errors import Unauthenticated

ALGORITHM = "ed25519"
REQUEST_COMPONENTS = ("@method", "@target-uri", "content-type", "content-digest")
DERIVED = {"@method", "@target-uri", "@authority", "@path", "@query", "@status"}
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_INT = re.compile(r"-?[0-9]{1,15}")


class SignatureError(Unauthenticated):
    """The request's HTTP message signature is missing, malformed or does not verify."""


class Token(str):
    """An RFC 8941 token (serialised bare, unlike a string)."""

    __slots__ = ()


Param = int | str | bool
Params = dict[str, Param]


# --- RFC 8941 structured fields: the subset signatures use --------------------------------


def _sf_string(value: str) -> str:
    if any(ord(c) < 0x20 or ord(c) > 0x7E for c in value):
        raise ValueError("a structured-field string holds printable ASCII only")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serialize_params(params: Sequence[tuple[str, Param]]) -> str:
    out = []
    for key, value in params:
        if value is True:
            out.append(f";{key}")
        elif value is False:
            out.append(f";{key}=?0")
        elif isinstance(value, Token | int):
            out.append(f";{key}={value}")
        else:
            out.append(f";{key}={_sf_string(str(value))}")
    return "".join(out)


def serialize_signature_params(
    components: Sequence[str], params: Sequence[tuple[str, Param]]
) -> str:
    """The inner list of covered components with its parameters, as in Signature-Input."""
    inner = " ".join(_sf_string(c) for c in components)
    return f"({inner}){_serialize_params(params)}"


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def fail(self, why: str) -> SignatureError:
        return SignatureError(f"malformed signature header: {why} at offset {self.i}")

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if not m:
            raise self.fail("expected a key")
        self.i = m.end()
        return m.group()

    def string(self) -> str:
        if self.peek() != '"':
            raise self.fail("expected a string")
        self.i += 1
        out = []
        while True:
            c = self.peek()
            if not c:
                raise self.fail("unterminated string")
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\"):
                    raise self.fail("bad escape")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif ord(c) < 0x20 or ord(c) > 0x7E:
                raise self.fail("non-ASCII in string")
            else:
                out.append(c)

    def bare_item(self) -> Param | bytes:
        c = self.peek()
        if c == '"':
            return self.string()
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise self.fail("unterminated byte sequence")
            raw = self.s[self.i + 1 : end]
            self.i = end + 1
            try:
                return base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise self.fail("bad base64 in byte sequence") from exc
        if c == "?":
            value = self.s[self.i + 1 : self.i + 2]
            if value not in ("0", "1"):
                raise self.fail("bad boolean")
            self.i += 2
            return value == "1"
        m = _INT.match(self.s, self.i)
        if m and not (m.end() < len(self.s) and self.s[m.end()] == "."):
            self.i = m.end()
            return int(m.group())
        m = _TOKEN.match(self.s, self.i)
        if m:
            self.i = m.end()
            return Token(m.group())
        raise self.fail("expected an item")

    def params(self) -> Params:
        out: Params = {}
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            key = self.key()
            value: Param = True
            if self.peek() == "=":
                self.i += 1
                item = self.bare_item()
                if isinstance(item, bytes):
                    raise self.fail("byte sequence as a parameter")
                value = item
            out[key] = value
        return out

    def member(self) -> tuple[list[str], Params] | bytes:
        """An inner list of strings with parameters, or a byte sequence."""
        if self.peek() == "(":
            self.i += 1
            items: list[str] = []
            while True:
                self.skip_sp()
                if self.peek() == ")":
                    self.i += 1
                    break
                name = self.string()
                if self.peek() == ";":
                    raise self.fail("component parameters are not supported")
                items.append(name)
                if self.peek() not in (" ", ")"):
                    raise self.fail("expected a space or ')'")
            return items, self.params()
        item = self.bare_item()
        if not isinstance(item, bytes):
            raise self.fail("expected an inner list or a byte sequence")
        self.params()
        return item

    def dictionary(self) -> dict[str, tuple[list[str], Params] | bytes]:
        out: dict[str, tuple[list[str], Params] | bytes] = {}
        self.skip_sp()
        while self.i < len(self.s):
            key = self.key()
            if self.peek() != "=":
                raise self.fail("expected '='")
            self.i += 1
            out[key] = self.member()
            self.skip_ows()
            if self.i >= len(self.s):
                break
            if self.peek() != ",":
                raise self.fail("expected ','")
            self.i += 1
            self.skip_ows()
            if self.i >= len(self.s):
                raise self.fail("trailing comma")
        return out


def parse_dictionary(value: str) -> dict[str, tuple[list[str], Params] | bytes]:
    """Raises SignatureError."""
    return _Parser(value.strip()).dictionary()


# --- components and the signature base ----------------------------------------------------


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` with sha-256."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def _authority(url: str) -> str:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def component_value(
    name: str,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    status: int | None = None,
) -> str:
    """The value of one covered component. Raises SignatureError if the message lacks it."""
    parts = urlsplit(url)
    derived = {
        "@method": method.upper(),
        "@target-uri": url,
        "@authority": _authority(url),
        "@path": parts.path or "/",
        "@query": "?" + parts.query,
    }
    if name == "@status":
        if status is None:
            raise SignatureError("@status is a response component")
        return str(status)
    if name in derived:
        return derived[name]
    if name.startswith("@") or name != name.lower():
        raise SignatureError(f"unsupported component {name!r}")
    items = headers.items() if isinstance(headers, Mapping) else headers
    values = [v.strip() for k, v in items if k.lower() == name]
    if not values:
        raise SignatureError(f"the covered field {name!r} is missing")
    return ", ".join(values)


def signature_base(
    components: Sequence[str],
    params_text: str,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    status: int | None = None,
) -> bytes:
    """RFC 9421 section 2.5: one line per component, then ``@signature-params``."""
    if len(set(components)) != len(components):
        raise SignatureError("a component is covered twice")
    lines = [
        f'"{c}": {component_value(c, method=method, url=url, headers=headers, status=status)}'
        for c in components
    ]
    lines.append(f'"@signature-params": {params_text}')
    text = "\n".join(lines)
    if any(ord(ch) > 0x7E for ch in text):
        raise SignatureError("non-ASCII in a covered component")
    return text.encode("ascii")


# --- signing and verifying ----------------------------------------------------------------


def sign(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    signer: crypto.Signer,
    label: str = "palermo",
    components: Sequence[str] = REQUEST_COMPONENTS,
    created: int | None = None,
    status: int | None = None,
    tag: str = "palermo",
) -> dict[str, str]:
    """The headers to add to a message: Content-Digest, Signature-Input, Signature."""
    added = {"Content-Digest": content_digest(body)}
    all_headers = {**headers, **added}
    params: list[tuple[str, Param]] = [
        ("created", int(created if created is not None else time.time())),
        ("keyid", signer.key_id),
        ("alg", ALGORITHM),
        ("tag", tag),
    ]
    params_text = serialize_signature_params(components, params)
    base = signature_base(
        components, params_text, method=method, url=url, headers=all_headers, status=status
    )
    signature = base64.b64encode(signer.sign(base)).decode()
    added["Signature-Input"] = f"{label}={params_text}"
    added["Signature"] = f"{label}=:{signature}:"
    return added


@dataclass(frozen=True, slots=True)
class Verified:
    label: str
    keyid: str
    created: int
    components: tuple[str, ...]


def verify(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    body: bytes | None,
    key_for: Callable[[str], bytes | None],
    required: Sequence[str] = REQUEST_COMPONENTS,
    max_age_seconds: int = 300,
    clock_skew_seconds: int = 60,
    tag: str | None = "palermo",
    status: int | None = None,
    now: int | None = None,
) -> Verified:
    """Check the first signature that covers ``required`` and whose key ``key_for`` knows.

    Raises SignatureError: no signature, a malformed header, a required component not covered,
    an unknown key, an algorithm other than ed25519, a signature too old or from the future,
    a Content-Digest that does not match the body, or a signature that does not verify."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    inputs_text = ", ".join(v for k, v in items if k.lower() == "signature-input")
    sigs_text = ", ".join(v for k, v in items if k.lower() == "signature")
    if not inputs_text or not sigs_text:
        raise SignatureError("the request carries no HTTP message signature (RFC 9421)")
    inputs = parse_dictionary(inputs_text)
    signatures = parse_dictionary(sigs_text)
    clock = int(time.time()) if now is None else now
    problems: list[str] = []
    for label, member in inputs.items():
        if isinstance(member, bytes):
            problems.append(f"{label}: Signature-Input is not an inner list")
            continue
        components, params = member
        try:
            return _verify_one(
                label=label,
                components=components,
                params=params,
                signature=signatures.get(label),
                method=method,
                url=url,
                items=items,
                body=body,
                key_for=key_for,
                required=required,
                max_age_seconds=max_age_seconds,
                clock_skew_seconds=clock_skew_seconds,
                tag=tag,
                status=status,
                now=clock,
            )
        except SignatureError as exc:
            problems.append(f"{label}: {exc.detail}")
    raise SignatureError("no signature verifies: " + "; ".join(problems))


def _check_params(
    params: Params, *, tag: str | None, now: int, max_age_seconds: int, clock_skew_seconds: int
) -> tuple[int, str]:
    """(created, keyid) once the parameters are acceptable. Raises SignatureError."""
    if tag is not None and params.get("tag") != tag:
        raise SignatureError(f"tag is not {tag!r}")
    alg = params.get("alg", ALGORITHM)
    if alg != ALGORITHM:
        raise SignatureError(f"algorithm {alg!r} is not accepted (only {ALGORITHM})")
    created = params.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureError("no created time")
    if created > now + clock_skew_seconds or now - created > max_age_seconds:
        raise SignatureError(f"created {created} is outside the accepted window")
    expires = params.get("expires")
    if isinstance(expires, int) and not isinstance(expires, bool) and expires < now:
        raise SignatureError("expired")
    keyid = params.get("keyid")
    if not isinstance(keyid, str):
        raise SignatureError("no keyid")
    return created, keyid


def _verify_one(
    *,
    label: str,
    components: list[str],
    params: Params,
    signature: tuple[list[str], Params] | bytes | None,
    method: str,
    url: str,
    items: list[tuple[str, str]],
    body: bytes | None,
    key_for: Callable[[str], bytes | None],
    required: Sequence[str],
    max_age_seconds: int,
    clock_skew_seconds: int,
    tag: str | None,
    status: int | None,
    now: int,
) -> Verified:
    if not isinstance(signature, bytes):
        raise SignatureError("no Signature value with this label")
    missing = [c for c in required if c not in components]
    if body and "content-digest" not in components:
        missing.append("content-digest")
    if missing:
        raise SignatureError(f"does not cover {', '.join(missing)}")
    created, keyid = _check_params(
        params,
        tag=tag,
        now=now,
        max_age_seconds=max_age_seconds,
        clock_skew_seconds=clock_skew_seconds,
    )
    public_key = key_for(keyid)
    if public_key is None:
        raise SignatureError(f"unknown key {keyid!r}")
    if "content-digest" in components:
        claimed = component_value("content-digest", method=method, url=url, headers=items)
        if not crypto.constant_time_equal(claimed.encode(), content_digest(body or b"").encode()):
            raise SignatureError("Content-Digest does not match the body")
    params_text = serialize_signature_params(components, list(params.items()))
    base = signature_base(
        components, params_text, method=method, url=url, headers=items, status=status
    )
    try:
        crypto.verify(public_key, base, signature)
    except crypto.CryptoError as exc:
        raise SignatureError("the signature does not verify") from exc
    return Verified(label, keyid, created, tuple(components))
