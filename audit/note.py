"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys.

The rules are those of golang.org/x/mod/sumdb/note, which the C2SP specification describes.

What this module guarantees
---------------------------
* A `Note` object exists only if its bytes parsed strictly and at least one signature by a
  known key verified. Every signature line from a known key was checked: one that fails
  rejects the whole note. Lines from unknown keys (name and key id not both known) are kept
  as unverified and never trusted.
* Strict parsing, as in Go: valid UTF-8; no control character other than newline; the text
  ends in a newline; the last blank line separates the text from one or more signature
  lines; each line is EM DASH (U+2014), space, key name, space, base64(key id || signature),
  newline; at most 100 signature lines. Base64 must be canonical, so an opened note
  re-serialises byte for byte.
* Ed25519 signing is deterministic: the same text and key give a byte-identical note.

Keys (names, key ids, key strings, the Ed25519 signer and verifier) live in `audit.keys`;
the names a note user needs are re-exported here.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from audit import _b64
from audit.keys import (
    SIGNATURE_TYPE_ED25519,
    Ed25519Signer,
    Ed25519Verifier,
    KeyFormatError,
    Signer,
    Verifier,
    is_valid_key_name,
    key_id,
)

__all__ = [
    "MAX_SIGNATURES",
    "SIGNATURE_TYPE_ED25519",
    "AmbiguousVerifierError",
    "Ed25519Signer",
    "Ed25519Verifier",
    "InvalidSignatureError",
    "KeyFormatError",
    "MalformedNoteError",
    "Note",
    "NoteError",
    "NoteSignature",
    "Signer",
    "UnverifiedNoteError",
    "VerifiedSignature",
    "Verifier",
    "add_signatures",
    "is_valid_key_name",
    "key_id",
    "open_note",
    "sign_note",
]

MAX_SIGNATURES = 100
"""Signature lines accepted in one note (C2SP requires at least 16; Go stops at 100)."""

_EM_DASH_PREFIX = "\u2014 "


class NoteError(ValueError):
    """A note, a key or a signature is unusable."""


class MalformedNoteError(NoteError):
    """The note does not follow the signed-note format."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed note: {reason}")


class UnverifiedNoteError(NoteError):
    """The note parsed but no signature from a known key is on it."""

    def __init__(self) -> None:
        super().__init__("note has no verifiable signatures")


class InvalidSignatureError(NoteError):
    """A signature line from a known key does not verify."""

    def __init__(self, name: str, key_id: int) -> None:
        self.name = name
        self.key_id = key_id
        super().__init__(f"invalid signature for key {name}+{key_id:08x}")


class AmbiguousVerifierError(NoteError):
    """Two different verifiers share a key name and key id."""


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key id and the signature bytes after the key id."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        """The line as it appears in a note, newline included."""
        payload = _b64.encode(self.key_id.to_bytes(4, "big") + self.signature)
        return f"{_EM_DASH_PREFIX}{self.name} {payload}\n"


def _check_text_characters(text: str) -> None:
    for char in text:
        if ord(char) < 0x20 and char != "\n":
            raise MalformedNoteError(f"control character U+{ord(char):04X} in the note")


def _as_text(message: bytes | str) -> str:
    if isinstance(message, str):
        try:
            message.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise MalformedNoteError("the note is not valid UTF-8") from exc
        return message
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedNoteError("the note is not valid UTF-8") from exc


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_EM_DASH_PREFIX):
        raise MalformedNoteError(f"signature line does not start with an em dash: {line[:40]!r}")
    name, _, payload = line[len(_EM_DASH_PREFIX) :].partition(" ")
    if not is_valid_key_name(name):
        raise MalformedNoteError(f"invalid key name in signature line: {name!r}")
    try:
        raw = _b64.decode(payload)
    except ValueError as exc:
        raise MalformedNoteError(f"signature by {name} is not canonical base64: {exc}") from exc
    if len(raw) < 5:
        raise MalformedNoteError(f"signature by {name} is too short")
    return NoteSignature(name, int.from_bytes(raw[:4], "big"), raw[4:])


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature line together with the known verifier that accepted it."""

    signature: NoteSignature
    verifier: Verifier


class Note:
    """A signed note whose signatures were checked when it was constructed.

    ``Note(message, verifiers)`` parses ``message`` (bytes or text) and verifies it against
    ``verifiers``; see the module docstring for what that guarantees.

    Raises (from the constructor):
        MalformedNoteError: the note does not follow the format.
        AmbiguousVerifierError: two different verifiers share a name and key id.
        InvalidSignatureError: a signature from a known key does not verify.
        UnverifiedNoteError: no signature from a known key is present.
    """

    __slots__ = ("_signatures", "_text", "_unverified")

    def __init__(self, message: bytes | str, verifiers: Iterable[Verifier]) -> None:
        known = _index_verifiers(verifiers)
        whole = _as_text(message)
        _check_text_characters(whole)
        split = whole.rfind("\n\n")
        if split < 0:
            raise MalformedNoteError("no blank line before the signatures")
        text, block = whole[: split + 1], whole[split + 2 :]
        if not block:
            raise MalformedNoteError("no signature lines")
        if not block.endswith("\n"):
            raise MalformedNoteError("the last signature line does not end in a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise MalformedNoteError(f"more than {MAX_SIGNATURES} signature lines")

        message_bytes = text.encode("utf-8")
        verified: list[VerifiedSignature] = []
        unverified: list[NoteSignature] = []
        seen_keys: set[tuple[str, int]] = set()
        for line in lines:
            signature = _parse_signature_line(line)
            identity = (signature.name, signature.key_id)
            verifier = known.get(identity)
            if verifier is None:
                if signature not in unverified:
                    unverified.append(signature)
                continue
            if identity in seen_keys:
                continue  # Go drops repeated signatures by one key
            seen_keys.add(identity)
            if not verifier.verify(message_bytes, signature.signature):
                raise InvalidSignatureError(signature.name, signature.key_id)
            verified.append(VerifiedSignature(signature, verifier))
        if not verified:
            raise UnverifiedNoteError()
        self._text = text
        self._signatures = tuple(verified)
        self._unverified = tuple(unverified)

    @property
    def text(self) -> str:
        """The signed text, final newline included."""
        return self._text

    @property
    def signatures(self) -> tuple[VerifiedSignature, ...]:
        """Signatures by known keys, all verified, in note order."""
        return self._signatures

    @property
    def unverified_signatures(self) -> tuple[NoteSignature, ...]:
        """Signature lines by unknown keys: not checked, not to be trusted."""
        return self._unverified

    def is_signed_by(self, verifier: Verifier) -> bool:
        """Whether ``verifier`` itself (not merely its name and id) verified a signature."""
        return any(item.verifier == verifier for item in self._signatures)

    def __repr__(self) -> str:
        names = ", ".join(item.signature.name for item in self._signatures)
        return f"Note(text={self._text!r}, signed by [{names}])"


def _index_verifiers(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    index: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        identity = (verifier.name, verifier.key_id)
        existing = index.get(identity)
        if existing is not None and existing != verifier:
            raise AmbiguousVerifierError(
                f"two different verifiers are named {verifier.name}+{verifier.key_id:08x}"
            )
        index[identity] = verifier
    return index


def open_note(message: bytes | str, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify a signed note; same as ``Note(message, verifiers)``.

    Raises:
        MalformedNoteError, AmbiguousVerifierError, InvalidSignatureError,
        UnverifiedNoteError: see `Note`.
    """
    return Note(message, verifiers)


def _signature_lines(text: str, signers: Iterable[Signer]) -> list[NoteSignature]:
    message = text.encode("utf-8")
    lines: list[NoteSignature] = []
    identities: set[tuple[str, int]] = set()
    for signer in signers:
        if not is_valid_key_name(signer.name):
            raise KeyFormatError(f"invalid signer name {signer.name!r}")
        identity = (signer.name, signer.key_id)
        if identity in identities:
            raise NoteError(f"signer {signer.name}+{signer.key_id:08x} is given twice")
        identities.add(identity)
        lines.append(NoteSignature(signer.name, signer.key_id, signer.sign(message)))
    return lines


def _render(text: str, lines: list[NoteSignature]) -> str:
    if not lines:
        raise NoteError("a note needs at least one signature")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    return text + "\n" + "".join(line.line() for line in lines)


def sign_note(text: str, *signers: Signer) -> str:
    """Sign ``text`` with each signer, in order, and return the note.

    Raises:
        MalformedNoteError: the text does not end in a newline, has a control character
            other than newline, or is not encodable as UTF-8.
        KeyFormatError: a signer's name is not a valid key name.
        NoteError: no signer, the same key twice, or more than 100 signatures.
    """
    if not text.endswith("\n"):
        raise MalformedNoteError("the text must end in a newline")
    _as_text(text)
    _check_text_characters(text)
    return _render(text, _signature_lines(text, signers))


def add_signatures(note: Note, *signers: Signer) -> str:
    """The note with signatures by ``signers`` added after the ones it carries.

    An existing signature by the same key (name and key id) as a new signer is replaced, as
    in Go's ``note.Sign``. Unverified lines are carried over unchanged.

    Raises:
        KeyFormatError: a signer's name is not a valid key name.
        NoteError: no signer, the same key twice, or more than 100 signatures.
    """
    if not signers:
        raise NoteError("no signer given")
    new_lines = _signature_lines(note.text, signers)
    replaced = {(line.name, line.key_id) for line in new_lines}
    kept = [item.signature for item in note.signatures] + list(note.unverified_signatures)
    kept = [line for line in kept if (line.name, line.key_id) not in replaced]
    return _render(note.text, kept + new_lines)
