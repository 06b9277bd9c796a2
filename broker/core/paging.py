"""Query parameters that page through stored rows: bounds the database can hold."""

from __future__ import annotations

import re

from broker.core.errors import SchemaViolation

# The largest value a signed 64-bit column (sequence numbers, tree sizes, indices) holds.
MAX_INT64 = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def parse_cursor(value: str, *, field: str = "cursor") -> int:
    """A cursor as the node handed it out: ASCII digits within a 64-bit column. ``isdigit()``
    would let through ``²`` and other Unicode digits, and ``int()`` numbers no column holds."""
    if _DIGITS.fullmatch(value) is None or int(value) > MAX_INT64:
        raise SchemaViolation(f"{field} must be a value returned as next_cursor", field=field)
    return int(value)
