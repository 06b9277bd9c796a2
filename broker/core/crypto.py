"""All cryptography of the broker, and the only broker module that imports PyNaCl.

- Ed25519 (signing keys, DSSE signatures, the node's countersignature);
- X25519 sealed boxes (a message key sealed to a participant's encryption key);
- XSalsa20-Poly1305 secret boxes (bodies at rest, custodial private keys under the master key);
- argon2id password hashes.

Verification returns only after a signature checked; every failure raises ``CryptoError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import weakref
from functools import cache

import anyio.to_thread
import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.signing
import nacl.utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from broker.core.settings import ConfigurationError, PasswordHash, PasswordHashSettings

SECRETBOX_KEY_SIZE = nacl.secret.SecretBox.KEY_SIZE
# "strong" is argon2-cffi's default (RFC 9106's second recommended option, as the library
# sets it); "fast" is the least argon2 accepts, so that a test suite can make accounts by
# the hundred. Settings refuse "fast" in production.
PASSWORD_HASHERS: dict[PasswordHash, PasswordHasher] = {
    "strong": PasswordHasher(),
    "fast": PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
}
_configured: list[PasswordHash] = []
_concurrency: list[int] = []
# One limiter per event loop (anyio's limiters belong to the loop they were made in; a test
# suite runs many loops in one process).
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def configure_password_hashing(settings: PasswordHashSettings) -> None:
    """Hash passwords as ``settings.password_hash`` says; without a call, the process reads
    ``PALERMO_ENV`` and ``PALERMO_PASSWORD_HASH`` on its first hash."""
    if settings.env == "production" and settings.password_hash != "strong":  # noqa: S105 - a name of parameters
        raise ConfigurationError("production hashes passwords with the strong parameters only")
    _configured[:] = [settings.password_hash]
    _concurrency[:] = [settings.password_hash_concurrency]
    _limiters.clear()
    _hashing.cache_clear()


@cache
def _hashing() -> tuple[PasswordHasher, str]:
    """The hasher, and a real hash to verify against when the user does not exist, so that
    timing does not reveal which user names exist."""
    profile = _configured[0] if _configured else PasswordHashSettings().password_hash
    hasher = PASSWORD_HASHERS[profile]
    return hasher, hasher.hash("palermo-timing-equaliser")


def password_hasher() -> PasswordHasher:
    """The hasher this process makes new password hashes with."""
    return _hashing()[0]


class CryptoError(Exception):
    """A signature, box or key did not check out."""


def key_id(public_key: bytes) -> str:
    """The key id of a public key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def generate_signing_key() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (32-byte seed, 32-byte public key)."""
    sk = nacl.signing.SigningKey.generate()
    return bytes(sk), bytes(sk.verify_key)


def signing_public_key(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    """A detached Ed25519 signature (64 bytes)."""
    return nacl.signing.SigningKey(seed).sign(message).signature


class Signer:
    """An Ed25519 signing key kept parsed, for the node's hot path."""

    __slots__ = ("_key", "key_id", "public_key")

    def __init__(self, seed: bytes) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._key.verify_key)
        self.key_id = key_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raises CryptoError unless ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(signature) != 64 or len(public_key) != 32:
        raise CryptoError("malformed Ed25519 signature or key")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise CryptoError("Ed25519 signature does not verify") from exc


def generate_box_key() -> tuple[bytes, bytes]:
    """A new X25519 key pair as (32-byte private key, 32-byte public key)."""
    sk = nacl.public.PrivateKey.generate()
    return bytes(sk), bytes(sk.public_key)


def box_public_key(private_key: bytes) -> bytes:
    return bytes(nacl.public.PrivateKey(private_key).public_key)


def seal(public_key: bytes, data: bytes) -> bytes:
    """Encrypt ``data`` to an X25519 public key (libsodium sealed box)."""
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PublicKey(public_key)).encrypt(data))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, TypeError) as exc:
        raise CryptoError("cannot seal to this public key") from exc


def unseal(private_key: bytes, sealed: bytes) -> bytes:
    try:
        return bytes(nacl.public.SealedBox(nacl.public.PrivateKey(private_key)).decrypt(sealed))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, TypeError) as exc:
        raise CryptoError("sealed box does not open with this key") from exc


def random_key() -> bytes:
    return nacl.utils.random(SECRETBOX_KEY_SIZE)


def secretbox_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """Authenticated encryption under a 32-byte key; the random nonce is prepended."""
    return bytes(nacl.secret.SecretBox(key).encrypt(plaintext))


def secretbox_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError, TypeError) as exc:
        raise CryptoError("ciphertext does not open with this key") from exc


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def _hash_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        total = (
            _concurrency[0] if _concurrency else PasswordHashSettings().password_hash_concurrency
        )
        limiter = _limiters[loop] = anyio.CapacityLimiter(total)
    return limiter


async def hash_password_off_loop(password: str) -> str:
    """``hash_password`` in a worker thread, at most ``PALERMO_PASSWORD_HASH_CONCURRENCY``
    at a time in this process: argon2 takes tens of milliseconds of CPU and 64 MiB, which on
    the event loop would stall every other request, and unbounded would let a burst of logins
    take every core and the memory with it."""
    return await anyio.to_thread.run_sync(hash_password, password, limiter=_hash_limiter())


async def check_password_off_loop(password_hash: str | None, password: str) -> bool:
    """``check_password`` in a worker thread, bounded as ``hash_password_off_loop``."""
    return await anyio.to_thread.run_sync(
        check_password, password_hash, password, limiter=_hash_limiter()
    )


def check_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; spends the same time when there is no hash."""
    hasher, dummy = _hashing()
    try:
        return hasher.verify(password_hash or dummy, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def keyed_digest(key: bytes, value: bytes) -> str:
    """HMAC-SHA-256 in hex: how a person's identifier may appear in an audit leaf."""
    return hmac.new(key, value, hashlib.sha256).hexdigest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
