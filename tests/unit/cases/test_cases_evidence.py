"""Evidence at rest: chunked, encrypted, bound to file and position; bounded by a limit."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from broker.cases import evidence
from broker.core import crypto
from broker.core.errors import PayloadTooLarge
from broker.core.ids import uuid7

CHUNK = evidence.CHUNK_SIZE


async def pieces(data: bytes, size: int = 65_536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def store(path: Path, data: bytes, limit: int = 10 * CHUNK) -> tuple[str, bytes, evidence.Stored]:
    file_id, key = str(uuid7()), crypto.random_key()

    async def go() -> evidence.Stored:
        return await evidence.receive(
            pieces(data), path=path, key=key, file_id=file_id, limit=limit
        )

    return file_id, key, anyio.run(go)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_round_trip_at_any_size(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "c" / "f.bin"
    file_id, key, stored = store(path, data)
    assert stored.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.chunk_count == max(1, -(-size // CHUNK))
    out = b"".join(evidence.chunks(path, key=key, file_id=file_id, chunk_count=stored.chunk_count))
    assert out == data
    if size >= 64:
        assert data[:64] not in path.read_bytes()  # encrypted at rest


def _records(raw: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(raw):
        (n,) = struct.unpack(">I", raw[i : i + 4])
        out.append(raw[i : i + 4 + n])
        i += 4 + n
    return out


def test_a_moved_dropped_or_foreign_chunk_does_not_open(tmp_path: Path) -> None:
    data = bytes(range(256)) * (3 * CHUNK // 256)
    path = tmp_path / "f.bin"
    file_id, key, _ = store(path, data)
    records = _records(path.read_bytes())
    assert len(records) == 3

    def read(blob: bytes, count: int = 3, fid: str = file_id) -> bytes:
        path.write_bytes(blob)
        return b"".join(evidence.chunks(path, key=key, file_id=fid, chunk_count=count))

    with pytest.raises(evidence.EvidenceCorrupt, match="out of place"):
        read(records[1] + records[0] + records[2])
    with pytest.raises(evidence.EvidenceCorrupt, match="out of place"):
        read(records[0] + records[1], count=2)  # the last chunk dropped
    with pytest.raises(evidence.EvidenceCorrupt, match="missing"):
        read(records[0] + records[1])
    with pytest.raises(evidence.EvidenceCorrupt, match="out of place"):
        read(b"".join(records), fid=str(uuid7()))  # another file's chunks
    flipped = bytearray(b"".join(records))
    flipped[100] ^= 1
    with pytest.raises(evidence.EvidenceCorrupt, match="does not open"):
        read(bytes(flipped))
    with pytest.raises(evidence.EvidenceCorrupt, match="after the last"):
        read(b"".join(records) + b"x")
    assert read(b"".join(records)) == data


def test_the_limit_stops_the_stream_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with pytest.raises(PayloadTooLarge):
        store(path, b"x" * (CHUNK + 10), limit=CHUNK)
    assert list(tmp_path.iterdir()) == []
