"""Strict standard base64 (RFC 4648 section 4) for the audit formats.

`decode` accepts only the canonical encoding: the standard alphabet, correct padding, no
whitespace, and zero padding bits. So every accepted string re-encodes to itself, and a
parsed note or checkpoint re-serialises byte for byte.
"""

import base64
import re

_CANONICAL_SHAPE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode(text: str) -> bytes:
    """Decode canonical standard base64.

    Raises:
        ValueError: the text is not canonical standard base64.
    """
    if not _CANONICAL_SHAPE.fullmatch(text):
        raise ValueError("not standard base64 (alphabet, length or padding)")
    # The shape check above leaves nothing b64decode could refuse.
    data = base64.b64decode(text, validate=True)
    if encode(data) != text:
        raise ValueError("not canonical base64 (non-zero padding bits)")
    return data
