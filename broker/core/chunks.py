"""The sealed-chunk format of evidence files, shared by the node and by a party that opens
its own copy (``broker.client.open_sealed_evidence``).

A file is a sequence of chunks, each ``len (4 bytes, big-endian) || SecretBox(key, header ||
data)``, the header binding the chunk to its file and position (``file id (16 bytes) ||
index (8 bytes) || last (1 byte)``): a chunk moved, dropped, repeated or taken from another
file does not open.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterator
from typing import BinaryIO

from broker.core import crypto

HEADER = struct.Struct(">16sQB")
LENGTH = struct.Struct(">I")


class ChunksCorrupt(Exception):  # noqa: N818 - names the problem, like the error tree
    """A chunk does not open, or is out of place: the file was altered."""


def header(file_id: str, index: int, last: bool) -> bytes:
    return HEADER.pack(uuid.UUID(file_id).bytes, index, 1 if last else 0)


def seal_chunk(key: bytes, file_id: str, index: int, data: bytes, *, last: bool) -> bytes:
    sealed = crypto.secretbox_encrypt(key, header(file_id, index, last) + data)
    return LENGTH.pack(len(sealed)) + sealed


def open_chunks(
    fh: BinaryIO, *, key: bytes, file_id: str, chunk_count: int, name: str
) -> Iterator[bytes]:
    """The plaintext of the ``chunk_count`` chunks read from ``fh``, one at a time. Raises
    ChunksCorrupt when one does not open, is out of place, or data follows the last."""
    for index in range(chunk_count):
        raw_len = fh.read(LENGTH.size)
        if len(raw_len) != LENGTH.size:
            raise ChunksCorrupt(f"{name}: chunk {index} is missing")
        (length,) = LENGTH.unpack(raw_len)
        sealed = fh.read(length)
        try:
            plain = crypto.secretbox_decrypt(key, sealed)
        except crypto.CryptoError as exc:
            raise ChunksCorrupt(f"{name}: chunk {index} does not open") from exc
        head, data = plain[: HEADER.size], plain[HEADER.size :]
        if head != header(file_id, index, index == chunk_count - 1):
            raise ChunksCorrupt(f"{name}: chunk {index} is out of place")
        yield data
    if fh.read(1):
        raise ChunksCorrupt(f"{name}: data after the last chunk")
