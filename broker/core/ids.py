"""Identifiers: UUIDv7 (RFC 9562) for messages, events and cases, so ids sort by creation time."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7: 48-bit Unix milliseconds, a 12-bit counter for monotonic order within one
    millisecond in this process, and 62 random bits."""
    global _last_ms, _counter  # noqa: PLW0603 - process-wide monotonic state
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            now = _last_ms
        else:
            _last_ms = now
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        counter = _counter
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)


def is_uuid7(value: uuid.UUID) -> bool:
    return value.version == 7 and value.variant == uuid.RFC_4122
