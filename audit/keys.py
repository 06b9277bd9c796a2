"""Signing keys for signed notes: key names, key ids, key strings and Ed25519.

What this module guarantees
---------------------------
* A key name is non-empty UTF-8 with no Unicode space, no '+' and no control character.
* Key id = ``SHA-256(name || 0x0A || signature type || public key)[:4]``, read big-endian
  (c2sp.org/signed-note). Type 0x01 is a plain Ed25519 note key; `audit.cosignature` uses
  type 0x04 for witness keys, so one key pair never has the same id in both roles.
* A verifier key string is ``<name>+<8 lowercase hex>+<base64(type || public key)>``, split
  on '+' at most twice (base64 may contain '+'); a signer key string is
  ``PRIVATE+KEY+<name>+<hex>+<base64(type || seed)>``. Decoding checks the syntax, canonical
  base64 and the key id; any proper substring or one-byte change of a key string is refused.
* Key objects validate their fields on construction; a signer's repr never shows its seed.
* Ed25519 (RFC 8032, through PyNaCl) signing is deterministic.
"""

import hashlib
import os
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import nacl.exceptions
import nacl.signing

from audit import _b64

SIGNATURE_TYPE_ED25519 = 0x01
"""Signature type byte of plain Ed25519 note signatures."""

ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64

_PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"


class KeyFormatError(ValueError):
    """A verifier or signer key string, a key or a key name is malformed."""


def is_valid_key_name(name: str) -> bool:
    """Non-empty, encodable UTF-8, no Unicode space, no '+', no control character."""
    if not name or "+" in name:
        return False
    if any(char.isspace() or ord(char) < 0x20 for char in name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """``SHA-256(name || 0x0A || signature_type || public_key)[:4]`` as a big-endian integer."""
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    ).digest()
    return int.from_bytes(digest[:4], "big")


class VerifierKey(NamedTuple):
    """A decoded verifier key string."""

    name: str
    key_id: int
    signature_type: int
    public_key: bytes


class SignerKey(NamedTuple):
    """A decoded signer key string (the key id is that of the matching public key)."""

    name: str
    key_id: int
    signature_type: int
    seed: bytes


def _parse_key_id(text: str) -> int:
    if len(text) != 8 or any(char not in "0123456789abcdef" for char in text):
        raise KeyFormatError(f"key id must be 8 lowercase hex digits, got {text!r}")
    return int(text, 16)


def _parse_key_material(text: str) -> tuple[int, bytes]:
    try:
        material = _b64.decode(text)
    except ValueError as exc:
        raise KeyFormatError(f"key data is not canonical base64: {exc}") from exc
    if len(material) < 2:
        raise KeyFormatError("key data is too short")
    return material[0], material[1:]


def decode_verifier_key(vkey: str) -> VerifierKey:
    """Decode ``<name>+<hex key id>+<base64(type || public key)>`` and check its key id.

    Raises:
        KeyFormatError: the string is malformed or its key id does not match.
    """
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("a verifier key is <name>+<key id>+<key data>")
    name, id_text, data = parts
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    claimed = _parse_key_id(id_text)
    signature_type, public_key = _parse_key_material(data)
    if key_id(name, signature_type, public_key) != claimed:
        raise KeyFormatError(f"key id {id_text} does not match the name and public key")
    return VerifierKey(name, claimed, signature_type, public_key)


def decode_signer_key(skey: str) -> SignerKey:
    """Decode ``PRIVATE+KEY+<name>+<hex key id>+<base64(type || seed)>``.

    Only the syntax is checked here; the key id is checked against the derived public key
    by the signer classes, which know the key type.

    Raises:
        KeyFormatError: the string is malformed.
    """
    if not skey.startswith(_PRIVATE_KEY_PREFIX):
        raise KeyFormatError("a signer key starts with PRIVATE+KEY+")
    parts = skey[len(_PRIVATE_KEY_PREFIX) :].split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("a signer key is PRIVATE+KEY+<name>+<key id>+<key data>")
    name, id_text, data = parts
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    claimed = _parse_key_id(id_text)
    signature_type, seed = _parse_key_material(data)
    return SignerKey(name, claimed, signature_type, seed)


def encode_verifier_key(name: str, signature_type: int, public_key: bytes) -> str:
    """``<name>+<hex key id>+<base64(type || public key)>``.

    Raises:
        KeyFormatError: the name is not a valid key name.
    """
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    identifier = key_id(name, signature_type, public_key)
    return f"{name}+{identifier:08x}+{_b64.encode(bytes([signature_type]) + public_key)}"


def encode_signer_key(name: str, signature_type: int, seed: bytes, public_key: bytes) -> str:
    """``PRIVATE+KEY+<name>+<hex key id of the public key>+<base64(type || seed)>``.

    Raises:
        KeyFormatError: the name is not a valid key name.
    """
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid key name {name!r}")
    identifier = key_id(name, signature_type, public_key)
    material = _b64.encode(bytes([signature_type]) + seed)
    return f"{_PRIVATE_KEY_PREFIX}{name}+{identifier:08x}+{material}"


def ed25519_public_key(seed: bytes) -> bytes:
    """The Ed25519 public key of a 32-byte seed.

    Raises:
        KeyFormatError: the seed is not 32 bytes.
    """
    if len(seed) != ED25519_KEY_SIZE:
        raise KeyFormatError(f"an Ed25519 seed is {ED25519_KEY_SIZE} bytes, got {len(seed)}")
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """Deterministic Ed25519 signature (RFC 8032) of ``message`` with the key of ``seed``."""
    return bytes(nacl.signing.SigningKey(seed).sign(message).signature)


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != ED25519_KEY_SIZE or len(signature) != ED25519_SIGNATURE_SIZE:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


class Verifier(Protocol):
    """Checks signatures by one key, identified in notes by (name, key id)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the line's bytes after the key id) signs ``message``."""
        ...


class Signer(Protocol):
    """Signs note texts with one key."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, message: bytes) -> bytes:
        """The signature bytes for a line (without the key id)."""
        ...


@dataclass(frozen=True)
class Ed25519Verifier:
    """Verifier for plain Ed25519 note signatures (signature type 0x01)."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyFormatError(f"invalid key name {self.name!r}")
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise KeyFormatError(
                f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes, got {len(self.public_key)}"
            )

    @classmethod
    def from_vkey(cls, vkey: str) -> "Ed25519Verifier":
        """Parse a verifier key string.

        Raises:
            KeyFormatError: malformed, wrong key id, not type 0x01, or not 32 bytes.
        """
        decoded = decode_verifier_key(vkey)
        if decoded.signature_type != SIGNATURE_TYPE_ED25519:
            raise KeyFormatError(
                f"signature type 0x{decoded.signature_type:02x} is not Ed25519 (0x01)"
            )
        return cls(decoded.name, decoded.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    @property
    def vkey(self) -> str:
        return encode_verifier_key(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        return ed25519_verify(self.public_key, message, signature)


@dataclass(frozen=True)
class Ed25519Signer:
    """Signer for plain Ed25519 note signatures. Its repr never shows the seed."""

    name: str
    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyFormatError(f"invalid key name {self.name!r}")
        ed25519_public_key(self.seed)  # checks the seed length

    @classmethod
    def from_skey(cls, skey: str) -> "Ed25519Signer":
        """Parse a signer key string and check its key id against the derived public key.

        Raises:
            KeyFormatError: malformed, not type 0x01, wrong seed length, or wrong key id.
        """
        decoded = decode_signer_key(skey)
        if decoded.signature_type != SIGNATURE_TYPE_ED25519:
            raise KeyFormatError(
                f"signature type 0x{decoded.signature_type:02x} is not Ed25519 (0x01)"
            )
        signer = cls(decoded.name, decoded.seed)
        if signer.key_id != decoded.key_id:
            raise KeyFormatError("key id does not match the name and derived public key")
        return signer

    @classmethod
    def generate(cls, name: str) -> "Ed25519Signer":
        """A new key with a random seed from the operating system.

        Raises:
            KeyFormatError: the name is not a valid key name.
        """
        return cls(name, os.urandom(ED25519_KEY_SIZE))

    @property
    def public_key(self) -> bytes:
        return ed25519_public_key(self.seed)

    @property
    def key_id(self) -> int:
        return key_id(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    @property
    def skey(self) -> str:
        """The secret signer key string."""
        return encode_signer_key(self.name, SIGNATURE_TYPE_ED25519, self.seed, self.public_key)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return ed25519_sign(self.seed, message)
