"""Evidence packages: files streamed in and out in bounded memory, encrypted at rest in chunks.

A file is hashed (SHA-256) while it streams in and written to disk as a sequence of sealed
chunks, each ``len (4 bytes, big-endian) || SecretBox(key, header || data)`` with at most
``CHUNK_SIZE`` bytes of data and a header that binds the chunk to its file and position
(``file id (16 bytes) || index (8 bytes) || last (1 byte)``): a chunk moved, dropped,
repeated or taken from another file does not open. The per-file key is kept only wrapped by
the node's master key, in the ``evidence_files`` row; destroying it (retention end) shreds the
file, which is then deleted.

Memory is bounded by the chunk size: neither the upload nor the download ever holds more
than about two chunks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import anyio
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from broker.cases.models import Case, EvidenceFile
from broker.core import crypto
from broker.core.chunks import ChunksCorrupt, open_chunks, seal_chunk
from broker.core.context import Caller, NodeContext
from broker.core.errors import PayloadTooLarge, SchemaViolation
from broker.core.text import name_text
from broker.messages import SealPass, encryption_keys
from broker.oversight.service import AuditKind, record_event

CHUNK_SIZE = 1024 * 1024


class EvidenceCorrupt(Exception):  # noqa: N818 - names the problem, like the error tree
    """A stored chunk does not open, or is out of place: the file was altered at rest."""


@dataclass(frozen=True, slots=True)
class Stored:
    size: int
    sha256: str
    chunk_count: int


def path_for(root: Path, case_id: str, file_id: str) -> Path:
    return root / case_id / f"{file_id}.bin"


async def receive(
    stream: AsyncIterator[bytes],
    *,
    path: Path,
    key: bytes,
    file_id: str,
    limit: int,
) -> Stored:
    """Write ``stream`` to ``path`` encrypted in chunks while hashing it. Raises
    PayloadTooLarge past ``limit`` bytes (the partial file is removed)."""
    await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
    partial = path.with_suffix(".part")
    digest = hashlib.sha256()
    size = 0
    index = 0
    buffer = bytearray()
    fh: BinaryIO = await anyio.to_thread.run_sync(partial.open, "wb")
    try:
        async for piece in stream:
            size += len(piece)
            if size > limit:
                raise PayloadTooLarge(f"the file is over the evidence limit of {limit} bytes")
            digest.update(piece)
            buffer += piece
            while len(buffer) > CHUNK_SIZE:
                block = bytes(buffer[:CHUNK_SIZE])
                del buffer[:CHUNK_SIZE]
                await _write(fh, key, file_id, index, block, last=False)
                index += 1
        await _write(fh, key, file_id, index, bytes(buffer), last=True)
        await anyio.to_thread.run_sync(fh.flush)
        await anyio.to_thread.run_sync(os.fsync, fh.fileno())
    except BaseException:
        await anyio.to_thread.run_sync(fh.close)
        await anyio.to_thread.run_sync(lambda: partial.unlink(missing_ok=True))
        raise
    await anyio.to_thread.run_sync(fh.close)
    await anyio.to_thread.run_sync(partial.replace, path)
    return Stored(size=size, sha256=digest.hexdigest(), chunk_count=index + 1)


async def _write(
    fh: BinaryIO, key: bytes, file_id: str, index: int, data: bytes, *, last: bool
) -> None:
    sealed = seal_chunk(key, file_id, index, data, last=last)
    await anyio.to_thread.run_sync(fh.write, sealed)


def chunks(path: Path, *, key: bytes, file_id: str, chunk_count: int) -> Iterator[bytes]:
    """The file's plaintext, chunk by chunk (a plain generator: Starlette iterates it in a
    worker thread). Raises EvidenceCorrupt when a chunk does not open or is out of place."""
    with path.open("rb") as fh:
        try:
            yield from open_chunks(
                fh, key=key, file_id=file_id, chunk_count=chunk_count, name=path.name
            )
        except ChunksCorrupt as exc:
            raise EvidenceCorrupt(str(exc)) from exc


def raw_chunks(path: Path, *, block: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The stored file as it is on disk, still sealed, ``block`` bytes at a time."""
    with path.open("rb") as fh:
        while piece := fh.read(block):
            yield piece


def erase(path: Path) -> None:
    """Delete a stored file (its key is destroyed by the caller)."""
    path.unlink(missing_ok=True)


# --- records -------------------------------------------------------------------------------


async def record_upload(
    session: AsyncSession,
    *,
    node: NodeContext,
    caller: Caller,
    case_id: str,
    side: str,
    file_id: str,
    name: str,
    media_type: str,
    stored: Stored,
    key: bytes,
    storage: str,
    now: dt.datetime,
) -> EvidenceFile:
    """The row of an uploaded file and its ``evidence:stored`` leaf, the file key wrapped by
    the node's master key and sealed to each party's current encryption key. Flushes."""
    case = await session.get(Case, case_id)
    assert case is not None
    keys = await encryption_keys(session, case.requesting_id, case.requested_id)
    for_requesting, requesting_kid = _sealed_to(keys, case.requesting_id, key)
    for_requested, requested_kid = _sealed_to(keys, case.requested_id, key)
    row = EvidenceFile(
        id=file_id,
        case_id=case_id,
        side=side,
        uploaded_by_participant=caller.participant_id,
        uploaded_by_account=caller.account_id,
        name=name,
        media_type=media_type,
        size=stored.size,
        sha256=stored.sha256,
        chunk_size=CHUNK_SIZE,
        chunk_count=stored.chunk_count,
        key_for_node=crypto.secretbox_encrypt(node.master_key, key),
        key_for_requesting=for_requesting,
        key_for_requested=for_requested,
        requesting_enc_kid=requesting_kid,
        requested_enc_kid=requested_kid,
        storage=storage,
        created_at=now,
        erased_at=None,
    )
    session.add(row)
    await session.flush()
    await record_event(
        session,
        kind=AuditKind.EVIDENCE_STORED,
        node=node.node_id,
        actor=caller.actor(),
        participant_id=caller.participant_id,
        at=now,
        case_id=case_id,
        evidence_id=file_id,
        sha256=stored.sha256,
        size=stored.size,
        media_type=media_type,
    )
    return row


def _sealed_to(
    keys: Mapping[str, tuple[str, bytes]], participant: str, key: bytes
) -> tuple[bytes | None, str | None]:
    """``key`` sealed to ``participant``'s current encryption key, with its kid; (None, None)
    when the participant has none."""
    if participant not in keys:
        return None, None
    kid, public = keys[participant]
    return crypto.seal(public, key), kid


def open_key(node: NodeContext, row: EvidenceFile) -> bytes:
    assert row.key_for_node is not None
    return crypto.secretbox_decrypt(node.master_key, row.key_for_node)


async def seal_missing_copies(
    session: AsyncSession, *, node: NodeContext, after: str = "", limit: int = 500
) -> SealPass:
    """Seal the key of up to ``limit`` evidence files with an id above ``after``, not erased,
    that lack a party's copy (uploaded before revision 0013 brought sealed copies, or while
    the party had no encryption key), to each of the case's two parties that has an
    encryption key now (the pass as ``broker.messages.seal_missing_copies`` does for
    messages). An existing copy is never replaced. Flushes."""
    rows = (
        await session.execute(
            select(EvidenceFile, Case.requesting_id, Case.requested_id)
            .join(Case, Case.id == EvidenceFile.case_id)
            .where(
                EvidenceFile.id > after,
                EvidenceFile.erased_at.is_(None),
                EvidenceFile.key_for_node.is_not(None),
                or_(
                    EvidenceFile.key_for_requesting.is_(None),
                    EvidenceFile.key_for_requested.is_(None),
                ),
            )
            .order_by(EvidenceFile.id)
            .limit(limit)
        )
    ).all()
    sealed = 0
    for f, requesting, requested in rows:
        keys = await encryption_keys(session, requesting, requested)
        missing = [
            p
            for p, copy in ((requesting, f.key_for_requesting), (requested, f.key_for_requested))
            if copy is None and p in keys
        ]
        if not missing:
            continue
        key = open_key(node, f)
        if requesting in missing:
            f.key_for_requesting, f.requesting_enc_kid = _sealed_to(keys, requesting, key)
        if requested in missing:
            f.key_for_requested, f.requested_enc_kid = _sealed_to(keys, requested, key)
        sealed += len(missing)
    await session.flush()
    return SealPass(sealed, rows[-1][0].id if rows else None)


# --- names, media types and download headers -------------------------------------------------

# RFC 6838 section 4.2: type "/" subtype, each a restricted-name.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")
_UNSAFE_IN_NAME = re.compile(r"[\x00-\x1f\x7f\"\\;]")
_ASCII_FALLBACK = re.compile(r"[^A-Za-z0-9 ._()+-]")
DEFAULT_MEDIA_TYPE = "application/octet-stream"


def checked_media_type(value: str | None) -> str:
    """The media type of an upload as stored: ``type/subtype`` in lower case (parameters such
    as ``charset`` dropped), ``application/octet-stream`` when none is given.

    Raises:
        SchemaViolation: on ``media_type``, when it is not an RFC 6838 type/subtype.
    """
    if value is None or not value.strip():
        return DEFAULT_MEDIA_TYPE
    essence = value.split(";", 1)[0].strip()
    if len(essence) > 127 or not _MEDIA_TYPE.fullmatch(essence):
        raise SchemaViolation(
            f"media_type {value[:60]!r} is not a media type: give an RFC 6838 type/subtype "
            "such as application/pdf",
            field="media_type",
        )
    return essence.lower()


def checked_file_name(value: str) -> str:
    """The name of an upload as stored: its last path segment, if it holds no control or
    format character (``broker.core.text.name_text``).

    Raises:
        SchemaViolation: on ``name``.
    """
    try:
        name_text(value)
    except ValueError as exc:
        raise SchemaViolation(f"name: {exc}", field="name") from exc
    base = re.split(r"[/\\]", value)[-1].strip()
    if base in ("", ".", ".."):
        raise SchemaViolation(f"name {value[:60]!r} names no file", field="name")
    return base[:255]


def download_headers(name: str, media_type: str) -> tuple[str, dict[str, str]]:
    """The media type to serve a stored file as, and the headers of its download, safe
    whatever the stored row holds (rows stored before uploads were checked, too): the
    stored media type when it is a type/subtype (else ``application/octet-stream``);
    always an attachment, with the basename both as RFC 6266 ``filename*`` (UTF-8) and as an
    ASCII ``filename`` fallback; ``nosniff``, ``no-store`` and a sandbox CSP, so that no
    browser renders a file (``text/html`` included) as a page of this node."""
    served = media_type if _MEDIA_TYPE.fullmatch(media_type or "") else DEFAULT_MEDIA_TYPE
    base = re.split(r"[/\\]", name)[-1]
    clean = _UNSAFE_IN_NAME.sub("_", "".join(c for c in base if not _invisible(c))).strip()
    clean = clean.lstrip(".") or "download"
    ascii_name = _ASCII_FALLBACK.sub(
        "_", unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode()
    )
    ascii_name = ascii_name.strip() or "download"
    return served, {
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(clean, safe='')}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cf", "Cs")
