"""The ``palermo-audit-bundle/v1`` export format: writer and streaming verifier.

Format (also in ``audit/BUNDLE.md``): JSON Lines, UTF-8, one JSON object per line, each
line ending in ``\\n`` (the last one may omit it).

1. Header, first line::

       {"format": "palermo-audit-bundle/v1", "origin": "<log origin>", "size": n,
        "checkpoint": "<signed checkpoint note of the tree of size n>"}

2. Entries, exactly n lines, in order i = 0 .. n-1::

       {"index": i, "leaf": "<standard base64 of the leaf bytes>"}

3. Optional proof lines, after the entries, each relative to the header's checkpoint::

       {"type": "inclusion", "index": i, "leaf_hash": "<b64>", "hashes": ["<b64>", ...]}
       {"type": "consistency", "size1": m, "root1": "<b64>", "hashes": ["<b64>", ...]}

Objects carry exactly the keys shown; duplicate keys, other keys, non-integer numbers and
non-canonical base64 are refused. A line is at most `MAX_LINE_BYTES` bytes.

What `verify_bundle` guarantees
-------------------------------
It returns a `BundleVerdict` only if all of these hold, and otherwise raises `BundleError`:

* the checkpoint verifies with the given log key, and the header's origin and size are the
  checkpoint's;
* there are exactly n entries, numbered 0 .. n-1 in order, and the RFC 6962 root of their
  leaf hashes is the checkpoint's root;
* every earlier checkpoint given verifies with the same key, is for the same origin, is no
  larger than n, and its root is the root of the first ``size`` entries (so the bundle's
  tree is consistent with it; two earlier checkpoints of one size must agree);
* every proof line verifies against the checkpoint's root (and a consistency proof from
  the size of an earlier checkpoint uses that checkpoint's root).

It streams: memory is O(log n) hashes plus one line, whatever n is.

`BundleError.index` is the *first bad index*: the smallest entry index at which the bundle
is proven wrong. A missing, extra, misnumbered or unreadable entry is found at its own
index. A changed entry can only be caught when a root covering it is checked: at the last
index under an earlier checkpoint (or under the bundle's checkpoint). The error then gives
the range of entries that must contain the change, from the end of the last checkpoint that
matched; an earlier checkpoint ending right after the change pins it exactly.
"""

import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from audit import _b64
from audit.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from audit.keys import Verifier
from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from audit.note import NoteError

FORMAT = "palermo-audit-bundle/v1"
MAX_LINE_BYTES = 1 << 20
PROGRESS_EVERY = 4096
"""Entries between two calls of the progress callback."""

_HEADER_KEYS = frozenset({"format", "origin", "size", "checkpoint"})
_ENTRY_KEYS = frozenset({"index", "leaf"})
_INCLUSION_KEYS = frozenset({"type", "index", "leaf_hash", "hashes"})
_CONSISTENCY_KEYS = frozenset({"type", "size1", "root1", "hashes"})


class BundleError(Exception):
    """The bundle does not verify. ``index`` is the first bad entry index, when there is one."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        self.reason = reason
        self.index = index
        super().__init__(reason if index is None else f"index {index}: {reason}")


@dataclass(frozen=True)
class BundleVerdict:
    """What a successful verification established."""

    checkpoint: Checkpoint
    key_name: str
    key_id: int
    earlier_sizes: tuple[int, ...]
    proofs_checked: int

    def summary(self) -> str:
        """One line for a human."""
        text = (
            f"OK: log {self.checkpoint.origin!r} has {self.checkpoint.size} entries with root "
            f"{_b64.encode(self.checkpoint.root_hash)}, signed by "
            f"{self.key_name}+{self.key_id:08x}"
        )
        if self.earlier_sizes:
            sizes = ", ".join(str(size) for size in self.earlier_sizes)
            text += f"; consistent with earlier checkpoints of size {sizes}"
        if self.proofs_checked:
            text += f"; {self.proofs_checked} proofs checked"
        return text


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def header_line(checkpoint_text: str, checkpoint: Checkpoint) -> bytes:
    """The header line for a bundle of the tree ``checkpoint`` signed as ``checkpoint_text``.

    Raises:
        ValueError: ``checkpoint_text`` is not a signed note of ``checkpoint``.
    """
    if not checkpoint_text.startswith(checkpoint.body() + "\n"):
        raise ValueError("the checkpoint text is not a signed note of this checkpoint")
    return _dumps(
        {
            "format": FORMAT,
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "checkpoint": checkpoint_text,
        }
    )


def entry_line(index: int, leaf: bytes) -> bytes:
    return _dumps({"index": index, "leaf": _b64.encode(leaf)})


def inclusion_proof_line(index: int, leaf: bytes, hashes: Sequence[bytes]) -> bytes:
    """A proof line for entry ``index`` with leaf hash ``leaf``, against the bundle's root."""
    return _dumps(
        {
            "type": "inclusion",
            "index": index,
            "leaf_hash": _b64.encode(leaf),
            "hashes": [_b64.encode(value) for value in hashes],
        }
    )


def consistency_proof_line(size1: int, root1: bytes, hashes: Sequence[bytes]) -> bytes:
    """A proof line from the tree of ``size1`` with ``root1`` to the bundle's tree."""
    return _dumps(
        {
            "type": "consistency",
            "size1": size1,
            "root1": _b64.encode(root1),
            "hashes": [_b64.encode(value) for value in hashes],
        }
    )


def write_bundle(
    out: BinaryIO,
    checkpoint_text: str,
    checkpoint: Checkpoint,
    leaves: Iterable[bytes],
    proof_lines: Iterable[bytes] = (),
) -> None:
    """Write a bundle: header, one entry per leaf, then the given proof lines.

    Raises:
        ValueError: the checkpoint text does not match the checkpoint, or the number of
            leaves is not the checkpoint's size (the output is then incomplete: discard it).
    """
    out.write(header_line(checkpoint_text, checkpoint))
    count = 0
    for leaf in leaves:
        if count == checkpoint.size:
            raise ValueError(f"more leaves than the checkpoint's size {checkpoint.size}")
        out.write(entry_line(count, leaf))
        count += 1
    if count != checkpoint.size:
        raise ValueError(f"{count} leaves written, the checkpoint's size is {checkpoint.size}")
    for line in proof_lines:
        out.write(line)


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _parse_object(raw: bytes, where: str, index: int | None) -> dict[str, object]:
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except ValueError as exc:  # also UnicodeDecodeError and json.JSONDecodeError
        raise BundleError(f"{where} is not a JSON object: {exc}", index) from exc
    if not isinstance(value, dict):
        raise BundleError(f"{where} is not a JSON object", index)
    return value


def _keys(obj: dict[str, object], expected: frozenset[str], where: str, index: int | None) -> None:
    if set(obj) != expected:
        raise BundleError(
            f"{where} must have exactly the keys {sorted(expected)}, has {sorted(obj)}", index
        )


def _integer(obj: dict[str, object], key: str, where: str, index: int | None) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(f"{where}: {key!r} must be a non-negative integer", index)
    return value


def _text(obj: dict[str, object], key: str, where: str, index: int | None) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise BundleError(f"{where}: {key!r} must be a string", index)
    return value


def _base64(obj: dict[str, object], key: str, where: str, index: int | None) -> bytes:
    try:
        return _b64.decode(_text(obj, key, where, index))
    except ValueError as exc:
        raise BundleError(f"{where}: {key!r} is not base64: {exc}", index) from exc


def _hash_list(obj: dict[str, object], where: str) -> list[bytes]:
    value = obj["hashes"]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BundleError(f"{where}: 'hashes' must be a list of base64 strings")
    try:
        return [_b64.decode(item) for item in value]
    except ValueError as exc:
        raise BundleError(f"{where}: a proof hash is not base64: {exc}") from exc


class _LineReader:
    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self.number = 0

    def next(self, index: int | None) -> bytes | None:
        raw = self._stream.readline(self._limit + 1)
        if not raw:
            return None
        self.number += 1
        if len(raw) > self._limit:
            raise BundleError(f"line {self.number} is longer than {self._limit} bytes", index)
        return raw[:-1] if raw.endswith(b"\n") else raw


def _open(text: str | bytes, verifier: Verifier, origin: str | None, what: str) -> Checkpoint:
    try:
        return open_checkpoint(text, verifier, origin=origin)
    except (NoteError, CheckpointError) as exc:
        raise BundleError(f"{what} does not verify: {exc}") from exc


def _earlier_roots(
    earlier: Sequence[str | bytes], verifier: Verifier, checkpoint: Checkpoint
) -> dict[int, bytes]:
    roots: dict[int, bytes] = {}
    for number, text in enumerate(earlier, start=1):
        old = _open(text, verifier, checkpoint.origin, f"earlier checkpoint #{number}")
        known = roots.get(old.size)
        if known is not None and not hmac.compare_digest(known, old.root_hash):
            raise BundleError(
                f"two earlier checkpoints of size {old.size} have different roots: "
                "the log signed two different trees"
            )
        if old.size == 0 and not hmac.compare_digest(old.root_hash, EMPTY_ROOT):
            raise BundleError(f"earlier checkpoint #{number} of size 0 has a non-empty root")
        roots[old.size] = old.root_hash
    return roots


def _check_not_rolled_back(
    earlier: Sequence[str | bytes], verifier: Verifier, checkpoint: Checkpoint
) -> None:
    for number, text in enumerate(earlier, start=1):
        old = _open(text, verifier, checkpoint.origin, f"earlier checkpoint #{number}")
        if old.size > checkpoint.size:
            raise BundleError(
                f"earlier checkpoint #{number} has size {old.size}, the bundle only "
                f"{checkpoint.size}: entries {checkpoint.size}..{old.size - 1} are gone "
                "(the log was rolled back or forked, or the bundle is stale)",
                checkpoint.size,
            )


def _check_proof(
    obj: dict[str, object], where: str, checkpoint: Checkpoint, earlier: dict[int, bytes]
) -> None:
    kind = obj.get("type")
    if kind == "inclusion":
        _keys(obj, _INCLUSION_KEYS, where, None)
        index = _integer(obj, "index", where, None)
        leaf = _base64(obj, "leaf_hash", where, None)
        hashes = _hash_list(obj, where)
        try:
            verify_inclusion(index, checkpoint.size, leaf, hashes, checkpoint.root_hash)
        except ProofError as exc:
            raise BundleError(f"{where}: inclusion proof of entry {index} fails: {exc}") from exc
    elif kind == "consistency":
        _keys(obj, _CONSISTENCY_KEYS, where, None)
        size1 = _integer(obj, "size1", where, None)
        root1 = _base64(obj, "root1", where, None)
        hashes = _hash_list(obj, where)
        held = earlier.get(size1)
        if held is not None and not hmac.compare_digest(held, root1):
            raise BundleError(f"{where}: root1 differs from the earlier checkpoint of size {size1}")
        try:
            verify_consistency(size1, checkpoint.size, hashes, root1, checkpoint.root_hash)
        except ProofError as exc:
            raise BundleError(f"{where}: consistency proof from size {size1} fails: {exc}") from exc
    else:
        raise BundleError(f"{where}: unknown proof type {kind!r}")


def _read_header(reader: _LineReader, verifier: Verifier, origin: str | None) -> Checkpoint:
    raw = reader.next(None)
    if raw is None:
        raise BundleError("the bundle is empty: no header line")
    header = _parse_object(raw, "header", None)
    _keys(header, _HEADER_KEYS, "header", None)
    if header["format"] != FORMAT:
        raise BundleError(f"header: format must be {FORMAT!r}, got {header['format']!r}")
    checkpoint = _open(_text(header, "checkpoint", "header", None), verifier, origin, "checkpoint")
    if _text(header, "origin", "header", None) != checkpoint.origin:
        raise BundleError("header: origin differs from the checkpoint's")
    if _integer(header, "size", "header", None) != checkpoint.size:
        raise BundleError("header: size differs from the checkpoint's")
    return checkpoint


def _read_entries(
    reader: _LineReader,
    checkpoint: Checkpoint,
    earlier_roots: dict[int, bytes],
    progress: Callable[[int, int], None] | None,
) -> dict[str, object] | None:
    """Check every entry line; return the first proof line, if any."""
    size = checkpoint.size
    frontier = Frontier()
    proven = 0  # entries [0, proven) matched the root of an earlier checkpoint
    first_proof: dict[str, object] | None = None
    while (raw := reader.next(frontier.size)) is not None:
        index = frontier.size
        obj = _parse_object(raw, f"line {reader.number}", index)
        if "type" in obj:
            first_proof = obj
            break
        if index >= size:
            raise BundleError(f"entry beyond the checkpoint's size {size}", index)
        _keys(obj, _ENTRY_KEYS, "entry", index)
        found = _integer(obj, "index", "entry", index)
        if found != index:
            raise BundleError(
                f"expected entry {index}, found entry {found}: "
                "an entry was removed, inserted or reordered",
                index,
            )
        frontier.append(leaf_hash(_base64(obj, "leaf", "entry", index)))
        held = earlier_roots.get(index + 1)
        if held is not None:
            if not hmac.compare_digest(frontier.root(), held):
                reason = (
                    f"entries {proven}..{index} do not hash to the root of the earlier "
                    f"checkpoint of size {index + 1}: at least one of them was changed"
                )
                if index + 1 == size and not hmac.compare_digest(held, checkpoint.root_hash):
                    reason += (
                        "; the bundle's checkpoint has the same size and another root, "
                        "so the log signed two different trees"
                    )
                raise BundleError(reason, index)
            proven = index + 1
        if progress is not None and frontier.size % PROGRESS_EVERY == 0:
            progress(frontier.size, size)
    if progress is not None:
        progress(frontier.size, size)

    if frontier.size < size:
        raise BundleError(
            f"the bundle ends after {frontier.size} entries but the checkpoint covers {size}: "
            f"entries {frontier.size}..{size - 1} are missing",
            frontier.size,
        )
    if not hmac.compare_digest(frontier.root(), checkpoint.root_hash):
        if size == 0:
            raise BundleError("the checkpoint of an empty log has a non-empty root")
        raise BundleError(
            f"entries {proven}..{size - 1} do not hash to the checkpoint's root: "
            "at least one of them was changed",
            size - 1,
        )
    return first_proof


def verify_bundle(
    stream: BinaryIO,
    verifier: Verifier,
    *,
    earlier: Sequence[str | bytes] = (),
    origin: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> BundleVerdict:
    """Verify a bundle read from ``stream``; see the module docstring for the guarantees.

    ``earlier`` holds signed checkpoint notes kept from before (by an auditor, a witness);
    ``origin``, when given, is the log the bundle must be for. ``progress(done, total)`` is
    called every `PROGRESS_EVERY` entries and at the end of the entries.

    Raises:
        BundleError: the bundle does not verify; ``index`` is the first bad index, if any.
    """
    reader = _LineReader(stream, max_line_bytes)
    checkpoint = _read_header(reader, verifier, origin)
    earlier_roots = _earlier_roots(earlier, verifier, checkpoint)
    pending = _read_entries(reader, checkpoint, earlier_roots, progress)
    # An earlier checkpoint larger than the bundle proves entries gone from index `size` on;
    # it is reported only now, after the entries, so a changed, missing or misnumbered entry
    # before it is the one named (the first index proven wrong).
    _check_not_rolled_back(earlier, verifier, checkpoint)
    proofs = 0
    while pending is not None:
        proofs += 1
        where = f"proof line {proofs} (line {reader.number})"
        if "type" not in pending:
            raise BundleError(f"{where}: entry lines must come before proof lines")
        _check_proof(pending, where, checkpoint, earlier_roots)
        raw = reader.next(None)
        pending = None if raw is None else _parse_object(raw, f"line {reader.number}", None)
    return BundleVerdict(
        checkpoint=checkpoint,
        key_name=verifier.name,
        key_id=verifier.key_id,
        earlier_sizes=tuple(sorted(earlier_roots)),
        proofs_checked=proofs,
    )
