"""Transparency log checkpoints (c2sp.org/tlog-checkpoint).

A checkpoint is a signed note whose text is ``<origin>\\n<size>\\n<base64 root>\\n`` followed
by optional extension lines.

What this module guarantees
---------------------------
* A `Checkpoint` always has a valid form: a non-empty origin without newline or control
  character; a size in 0..2**64-1; a 32-byte root hash; non-empty extension lines. Its
  `Checkpoint.body` is the exact note text that gets signed.
* Text becomes a `Checkpoint` only through `open_checkpoint` (or `checkpoint_from_note`,
  which takes an already verified `Note`). Both require a verified signature by the log's
  own key, not just by any known key such as a witness's, and a strictly formed body: size
  in ASCII decimal with no sign or leading zero, canonical base64 root, no empty line.
* Same log, same size, same key: byte-identical checkpoints (Ed25519 is deterministic).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from audit import _b64
from audit.keys import Signer, Verifier
from audit.merkle import HASH_SIZE, MAX_TREE_SIZE
from audit.note import Note, sign_note

_SIZE_SYNTAX = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A checkpoint is unusable."""


class CheckpointFormatError(CheckpointError):
    """The checkpoint text or fields do not follow c2sp.org/tlog-checkpoint."""


class CheckpointSignatureError(CheckpointError):
    """The checkpoint carries no verified signature by the log's key."""


class OriginMismatchError(CheckpointError):
    """The checkpoint is for another log than the one expected."""


def _check_line(what: str, line: str) -> None:
    if not line:
        raise CheckpointFormatError(f"{what} must not be empty")
    for char in line:
        if ord(char) < 0x20:
            raise CheckpointFormatError(f"{what} contains control character U+{ord(char):04X}")


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its size and root hash; valid by construction.

    Raises (from the constructor):
        CheckpointFormatError: a field cannot appear in a checkpoint.
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line("origin", self.origin)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointFormatError(f"tree size {self.size} is not in 0..2**64-1")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointFormatError(
                f"root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}"
            )
        for number, line in enumerate(self.extensions, start=1):
            _check_line(f"extension line {number}", line)

    def body(self) -> str:
        """The note text: origin, size, base64 root hash and extension lines."""
        lines = [self.origin, str(self.size), _b64.encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)


def _parse_body(text: str) -> tuple[str, int, bytes, tuple[str, ...]]:
    """Split a checkpoint body into its fields, checking syntax but not the hash length."""
    if not text.endswith("\n"):
        raise CheckpointFormatError("checkpoint text must end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointFormatError(
            "checkpoint text needs at least three lines: origin, tree size, root hash"
        )
    origin, size_text, root_text, *extensions = lines
    _check_line("origin", origin)
    if not _SIZE_SYNTAX.fullmatch(size_text):
        raise CheckpointFormatError(
            f"tree size {size_text!r} is not a decimal number without sign or leading zero"
        )
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise CheckpointFormatError(f"tree size {size_text} does not fit in 64 bits")
    try:
        root = _b64.decode(root_text)
    except ValueError as exc:
        raise CheckpointFormatError(f"root hash {root_text!r} is not base64: {exc}") from exc
    for number, line in enumerate(extensions, start=1):
        _check_line(f"extension line {number}", line)
    return origin, size, root, tuple(extensions)


def checkpoint_from_note(
    note: Note, log_verifier: Verifier, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in a verified note, if the log's own key is among its verified signers.

    Raises:
        CheckpointSignatureError: ``log_verifier`` did not verify a signature on the note.
        CheckpointFormatError: the note text is not a valid checkpoint body.
        OriginMismatchError: ``origin`` is given and differs from the checkpoint's.
    """
    if not note.is_signed_by(log_verifier):
        raise CheckpointSignatureError(
            f"checkpoint is not signed by the log key {log_verifier.name}+{log_verifier.key_id:08x}"
        )
    checkpoint = Checkpoint(*_parse_body(note.text))
    if origin is not None and checkpoint.origin != origin:
        raise OriginMismatchError(
            f"checkpoint is for log {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint


def open_checkpoint(
    text: bytes | str,
    log_verifier: Verifier,
    *,
    origin: str | None = None,
    other_verifiers: Iterable[Verifier] = (),
) -> Checkpoint:
    """Verify a signed checkpoint and return it.

    ``other_verifiers`` (witnesses, a previous log key) are checked too when their lines
    are present; a bad signature from any known key rejects the checkpoint.

    Raises:
        audit.note.NoteError: the note is malformed, a known signature is invalid, or no
            known key signed it (see `audit.note.Note`).
        CheckpointSignatureError: the log's own key did not sign it.
        CheckpointFormatError: the text is not a valid checkpoint body.
        OriginMismatchError: ``origin`` is given and differs from the checkpoint's.
    """
    note = Note(text, [log_verifier, *other_verifiers])
    return checkpoint_from_note(note, log_verifier, origin=origin)


def sign_checkpoint(checkpoint: Checkpoint, *signers: Signer) -> str:
    """The signed note of ``checkpoint``.

    Raises:
        audit.note.NoteError: no signer, a signer given twice, or an invalid signer name.
    """
    return sign_note(checkpoint.body(), *signers)
