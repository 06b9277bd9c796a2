"""Witness cosignatures of checkpoints (c2sp.org/tlog-cosignature, Ed25519 "cosignature/v1").

A witness (an oversight body, a partner node) that has checked a consistency proof from
the last checkpoint it saw adds one signature line to the checkpoint note:

    — <witness name> base64(key id[4] || timestamp[8, big-endian] || Ed25519 signature[64])

The signature covers ``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole
checkpoint body, extension lines included.

What this module guarantees
---------------------------
* The key id of a cosigner is ``SHA-256(name || 0x0A || 0x04 || public key)[:4]`` (signature
  type 0x04), so a witness's plain Ed25519 note key (type 0x01) never verifies a
  cosignature and the other way round. Verifier keys use type byte 0x04 too.
* A cosignature verifies only if its timestamp is at most 2**63 - 1 and the Ed25519
  signature covers header, timestamp line and checkpoint body exactly.
* `open_cosigned_checkpoint` returns only if the log's own signature verified and at least
  the required number of distinct known witnesses cosigned; any invalid signature from a
  known key rejects the whole checkpoint.
* `cosign_checkpoint` refuses to cosign a checkpoint the log's key did not sign. Checking
  consistency with the witness's previous checkpoint is the caller's job, before calling it.
"""

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from audit.checkpoint import Checkpoint, checkpoint_from_note
from audit.keys import (
    ED25519_KEY_SIZE,
    KeyFormatError,
    Verifier,
    decode_signer_key,
    decode_verifier_key,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    encode_signer_key,
    encode_verifier_key,
    is_valid_key_name,
    key_id,
)
from audit.note import Note, add_signatures

SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04
"""Signature type byte of timestamped Ed25519 witness cosignatures."""

COSIGNATURE_V1_HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
TIMESTAMPED_SIGNATURE_SIZE = 8 + 64


class CosignatureError(ValueError):
    """A cosignature, or a request to check cosignatures, is unusable."""


class CosignatureQuorumError(CosignatureError):
    """Fewer known witnesses cosigned than required."""


def cosigned_message(checkpoint_body: str | bytes, timestamp: int) -> bytes:
    """The bytes a witness signs: header, ``time <timestamp>`` line, checkpoint body.

    Raises:
        CosignatureError: the timestamp is not in 0..2**63-1.
    """
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError(f"timestamp {timestamp} is not in 0..2**63-1")
    body = checkpoint_body.encode("utf-8") if isinstance(checkpoint_body, str) else checkpoint_body
    return COSIGNATURE_V1_HEADER + f"time {timestamp}\n".encode("ascii") + body


def parse_timestamped_signature(signature: bytes) -> tuple[int, bytes]:
    """Split the bytes after a cosignature line's key id into (timestamp, Ed25519 signature).

    Raises:
        CosignatureError: not 72 bytes, or the timestamp exceeds 2**63 - 1.
    """
    if len(signature) != TIMESTAMPED_SIGNATURE_SIZE:
        raise CosignatureError(
            f"a cosignature is {TIMESTAMPED_SIGNATURE_SIZE} bytes after the key id, "
            f"got {len(signature)}"
        )
    timestamp = int.from_bytes(signature[:8], "big")
    if timestamp > MAX_TIMESTAMP:
        raise CosignatureError(f"cosignature timestamp {timestamp} exceeds 2**63 - 1")
    return timestamp, signature[8:]


@dataclass(frozen=True)
class CosignatureVerifier:
    """Checks cosignature/v1 lines of one witness key; usable wherever a note `Verifier` is."""

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
    def from_vkey(cls, vkey: str) -> "CosignatureVerifier":
        """Parse ``<name>+<hex key id>+<base64(0x04 || public key)>``.

        Raises:
            KeyFormatError: malformed, wrong key id, not type 0x04, or not 32 bytes.
        """
        decoded = decode_verifier_key(vkey)
        if decoded.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
            raise KeyFormatError(
                f"signature type 0x{decoded.signature_type:02x} is not cosignature/v1 (0x04)"
            )
        return cls(decoded.name, decoded.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    @property
    def vkey(self) -> str:
        return encode_verifier_key(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (timestamp || Ed25519) cosigns the checkpoint body ``message``."""
        try:
            timestamp, raw = parse_timestamped_signature(signature)
        except CosignatureError:
            return False
        return ed25519_verify(self.public_key, cosigned_message(message, timestamp), raw)


def _now() -> int:
    return int(time.time())


@dataclass(frozen=True)
class CosignatureSigner:
    """A witness key producing cosignature/v1 lines; usable wherever a note `Signer` is.

    ``clock`` gives the POSIX time written into each cosignature. The repr never shows the
    seed.
    """

    name: str
    seed: bytes = field(repr=False)
    clock: Callable[[], int] = field(default=_now, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise KeyFormatError(f"invalid key name {self.name!r}")
        ed25519_public_key(self.seed)  # checks the seed length

    @classmethod
    def from_skey(cls, skey: str, clock: Callable[[], int] = _now) -> "CosignatureSigner":
        """Parse ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x04 || seed)>``.

        Raises:
            KeyFormatError: malformed, not type 0x04, wrong seed length, or wrong key id.
        """
        decoded = decode_signer_key(skey)
        if decoded.signature_type != SIGNATURE_TYPE_COSIGNATURE_V1:
            raise KeyFormatError(
                f"signature type 0x{decoded.signature_type:02x} is not cosignature/v1 (0x04)"
            )
        signer = cls(decoded.name, decoded.seed, clock)
        if signer.key_id != decoded.key_id:
            raise KeyFormatError("key id does not match the name and derived public key")
        return signer

    @classmethod
    def generate(cls, name: str, clock: Callable[[], int] = _now) -> "CosignatureSigner":
        """A new witness key with a random seed from the operating system.

        Raises:
            KeyFormatError: the name is not a valid key name.
        """
        return cls(name, os.urandom(ED25519_KEY_SIZE), clock)

    @property
    def public_key(self) -> bytes:
        return ed25519_public_key(self.seed)

    @property
    def key_id(self) -> int:
        return key_id(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    @property
    def skey(self) -> str:
        """The secret signer key string."""
        return encode_signer_key(
            self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.seed, self.public_key
        )

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """timestamp[8] || Ed25519 signature of the cosigned message for body ``message``.

        Raises:
            CosignatureError: the clock gave a time outside 0..2**63-1.
        """
        timestamp = self.clock()
        signed = cosigned_message(message, timestamp)
        return timestamp.to_bytes(8, "big") + ed25519_sign(self.seed, signed)


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: which witness, and the time it vouched for the checkpoint."""

    name: str
    key_id: int
    timestamp: int


@dataclass(frozen=True)
class CosignedCheckpoint:
    """A checkpoint verified with the log's key, and the witnesses that cosigned it."""

    checkpoint: Checkpoint
    cosignatures: tuple[Cosignature, ...]


def cosign_checkpoint(
    text: bytes | str,
    log_verifier: Verifier,
    cosigner: CosignatureSigner,
    *,
    origin: str | None = None,
) -> str:
    """The checkpoint note with the witness's cosignature line added (or replaced).

    Raises:
        audit.note.NoteError: the note is malformed or not verifiably signed.
        audit.checkpoint.CheckpointError: not a checkpoint signed by the log's key, or for
            another origin.
        CosignatureError: the cosigner's clock is out of range.
    """
    note = Note(text, [log_verifier])
    checkpoint_from_note(note, log_verifier, origin=origin)
    return add_signatures(note, cosigner)


def open_cosigned_checkpoint(
    text: bytes | str,
    log_verifier: Verifier,
    witnesses: Iterable[CosignatureVerifier],
    *,
    quorum: int | None = None,
    origin: str | None = None,
) -> CosignedCheckpoint:
    """Verify a checkpoint and its cosignatures by known witnesses.

    ``quorum`` is the number of distinct witnesses whose valid cosignature is required;
    by default all the given witnesses.

    Raises:
        CosignatureError: no witness given, or a quorum outside 1..number of witnesses.
        audit.note.NoteError: the note is malformed, or any known signature is invalid.
        audit.checkpoint.CheckpointError: the log's key did not sign it, the body is not a
            checkpoint, or it is for another origin.
        CosignatureQuorumError: fewer than ``quorum`` witnesses cosigned.
    """
    known = list(dict.fromkeys(witnesses))
    required = len(known) if quorum is None else quorum
    if not known or not 1 <= required <= len(known):
        raise CosignatureError(
            f"quorum {required} cannot be met by {len(known)} distinct witness keys"
        )
    note = Note(text, [log_verifier, *known])
    checkpoint = checkpoint_from_note(note, log_verifier, origin=origin)
    cosignatures = []
    for item in note.signatures:
        if item.verifier in known:
            timestamp, _ = parse_timestamped_signature(item.signature.signature)
            cosignatures.append(Cosignature(item.signature.name, item.signature.key_id, timestamp))
    if len(cosignatures) < required:
        raise CosignatureQuorumError(
            f"{len(cosignatures)} of the {required} required witness cosignatures are present"
        )
    return CosignedCheckpoint(checkpoint, tuple(cosignatures))
