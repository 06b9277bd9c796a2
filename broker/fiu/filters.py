"""Keyed filters for anonymous matching, computed by the FIUs, never by the broker.

Two FIUs share a fresh random key per exchange (``new_exchange_key``; it may travel sealed
to the partner's X25519 key, ``seal_exchange_key``, which the broker only carries). Each FIU
turns a subject into ``HMAC-SHA-256(key, normalise(subject))``: without the key, a filter
cannot be tested against a dictionary of names, and a filter from one exchange says nothing
about another. The partner computes the filters of its own holdings with the same key and
answers hit or no hit.

This module is client code: the broker never calls ``keyed_filter`` on a subject (it never
sees one); it only checks that what it carries has the shape of a filter.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Iterable

from broker.core import crypto

FILTER_PATTERN = re.compile(r"^[0-9a-f]{64}$")
KEY_SIZE = 32


def new_exchange_key() -> bytes:
    return secrets.token_bytes(KEY_SIZE)


def normalise(subject: str) -> str:
    """The canonical form both FIUs hash: NFKC, case-folded, accents and punctuation
    dropped, whitespace collapsed (``"  Mário  ROSSI "`` and ``"mario rossi"`` agree)."""
    text = unicodedata.normalize("NFKD", subject)
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def keyed_filter(key: bytes, subject: str) -> str:
    if len(key) < 16:
        raise ValueError("an exchange key has at least 16 bytes")
    return hmac.new(key, normalise(subject).encode("utf-8"), hashlib.sha256).hexdigest()


def keyed_filters(key: bytes, subjects: Iterable[str]) -> list[str]:
    return sorted({keyed_filter(key, s) for s in subjects})


def matches(key: bytes, filters: Iterable[str], holdings: Iterable[str]) -> bool:
    """What the partner FIU computes on its side: does any of its holdings match?"""
    ours = {keyed_filter(key, s) for s in holdings}
    return any(hmac.compare_digest(f, g) for f in filters for g in ours)


def seal_exchange_key(partner_public_key: bytes, key: bytes) -> bytes:
    return crypto.seal(partner_public_key, key)


def open_exchange_key(private_key: bytes, sealed: bytes) -> bytes:
    return crypto.unseal(private_key, sealed)
