"""JWT access tokens, and the only broker module that imports python-jose.

The algorithm is pinned (HS256 with the node's token secret); ``iss``, ``aud``, ``exp``, ``iat``
and ``sub`` are required and checked; a token whose header names any other algorithm,
including ``none``, is refused before python-jose looks at it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass

from jose import JWTError, jwt

ALGORITHM = "HS256"


class TokenError(Exception):
    """The token is malformed, forged, expired, or not for this node."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    subject: str
    participant_id: str
    roles: frozenset[str]
    kind: str
    expires_at: int
    #: When the token was issued, in milliseconds since the epoch (the ``iat`` claim has only
    #: seconds; revocation compares with an account's ``tokens_valid_after``).
    issued_at_ms: int


def issue_token(
    *,
    secret: bytes,
    issuer: str,
    audience: str,
    subject: str,
    participant_id: str,
    roles: frozenset[str],
    kind: str,
    ttl_seconds: int,
) -> tuple[str, int]:
    """Return (token, expires_at unix seconds)."""
    now_ms = time.time_ns() // 1_000_000
    now = now_ms // 1000
    exp = now + ttl_seconds
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "iat_ms": now_ms,
        "nbf": now - 5,
        "exp": exp,
        "jti": uuid.uuid4().hex,
        "pid": participant_id,
        "roles": sorted(roles),
        "kind": kind,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), exp


def _header(token: str) -> dict[str, object]:
    try:
        head = token.split(".", 1)[0]
        padded = head + "=" * (-len(head) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise TokenError("malformed token header") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed token header")
    return value


def decode_token(token: str, *, secret: bytes, issuer: str, audience: str) -> TokenClaims:
    """Verify a token and return its claims. Raises TokenError."""
    if token.count(".") != 2:
        raise TokenError("a JWT has three parts")
    if _header(token).get("alg") != ALGORITHM:
        raise TokenError(f"token algorithm must be {ALGORITHM}")
    try:
        claims = jwt.decode(
            token,
            secret,  # the secret's own bytes are the HMAC key (RFC 7518 sec. 3.2)
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={
                "require_iat": True,
                "require_exp": True,
                "require_sub": True,
                "require_iss": True,
                "require_aud": True,
            },
        )
    except JWTError as exc:
        raise TokenError(str(exc) or "token does not verify") from exc
    pid, roles, kind = claims.get("pid"), claims.get("roles"), claims.get("kind")
    if not isinstance(pid, str) or not isinstance(kind, str) or not isinstance(roles, list):
        raise TokenError("token lacks participant, roles or kind")
    return TokenClaims(
        subject=str(claims["sub"]),
        participant_id=pid,
        roles=frozenset(str(r) for r in roles),
        kind=kind,
        expires_at=int(claims["exp"]),
        issued_at_ms=_issued_at_ms(claims),
    )


def _issued_at_ms(claims: dict[str, object]) -> int:
    iat, iat_ms = claims.get("iat"), claims.get("iat_ms")
    if not isinstance(iat, int):
        raise TokenError("token lacks iat")
    if isinstance(iat_ms, int) and iat_ms // 1000 == iat:
        return iat_ms
    return iat * 1000
