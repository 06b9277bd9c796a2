"""Roots and proofs from the stored perfect-subtree hashes (``audit_nodes``).

`audit.merkle` computes roots and proofs through a synchronous `audit.HashReader`, and which
rows it reads depends only on the sizes and indices asked for, never on the hashes it reads.
So `with_stored_nodes` runs a computation twice: first against a reader that only records
the (level, index) pairs it is asked for, then against exactly those rows, fetched in one
query. A root, an inclusion proof or a consistency proof costs one round trip and O(log n)
rows, whatever the size of the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from audit import HASH_SIZE, HashReader
from broker.oversight.models import AuditNode

T = TypeVar("T")

_PLACEHOLDER = bytes(HASH_SIZE)
_MAX_TERMS = 400  # (level, index) pairs per query, well under SQLite's variable limit
_UNNEST = text(
    "SELECT n.level, n.idx, n.hash "
    "FROM unnest(CAST(:l AS smallint[]), CAST(:i AS bigint[])) AS k(level, idx) "
    "JOIN audit_nodes n ON n.level = k.level AND n.idx = k.idx"
)


class _Recorder:
    """A reader that hands out placeholder hashes and notes which subtrees were asked for."""

    def __init__(self) -> None:
        self.wanted: set[tuple[int, int]] = set()

    def get_subtree(self, level: int, index: int) -> bytes:
        self.wanted.add((level, index))
        return _PLACEHOLDER


class StoredNodes:
    """A `audit.HashReader` over rows already read from ``audit_nodes``."""

    def __init__(self, rows: Mapping[tuple[int, int], bytes]) -> None:
        self._rows = dict(rows)

    def get_subtree(self, level: int, index: int) -> bytes:
        """Raises KeyError: the row was not read (it is not stored, or was not asked for)."""
        try:
            return self._rows[(level, index)]
        except KeyError:
            raise KeyError(f"audit_nodes has no subtree at level {level}, index {index}") from None


def wanted_subtrees(compute: Callable[[HashReader], object]) -> set[tuple[int, int]]:
    """The (level, index) rows ``compute`` reads (it must not depend on hash values)."""
    recorder = _Recorder()
    compute(recorder)
    return recorder.wanted


async def read_subtrees(session: AsyncSession, wanted: Iterable[tuple[int, int]]) -> StoredNodes:
    """Read the given rows of ``audit_nodes``; missing rows are simply absent."""
    keys = sorted(set(wanted))
    rows: dict[tuple[int, int], bytes] = {}
    if session.get_bind().dialect.name == "postgresql":
        # Two array parameters joined against the primary key: one index probe per row, and
        # a statement the server plans the same way whatever the number of keys.
        found = await session.execute(
            _UNNEST, {"l": [k[0] for k in keys], "i": [k[1] for k in keys]}
        )
        return StoredNodes({(int(lv), int(ix)): bytes(h) for lv, ix, h in found.all()})
    for start in range(0, len(keys), _MAX_TERMS):
        chunk = keys[start : start + _MAX_TERMS]
        stmt = select(AuditNode.level, AuditNode.idx, AuditNode.hash).where(
            or_(*(and_(AuditNode.level == level, AuditNode.idx == idx) for level, idx in chunk))
        )
        for level, idx, value in (await session.execute(stmt)).all():
            rows[(int(level), int(idx))] = bytes(value)
    return StoredNodes(rows)


async def with_stored_nodes(session: AsyncSession, compute: Callable[[HashReader], T]) -> T:
    """Run ``compute`` (a root, proof or frontier computation) on the stored subtree hashes.

    Raises:
        KeyError: a row it needs is not stored (the sizes exceed the sequenced log).
        audit.ProofError: from ``compute``, for sizes or indices that have no proof.
    """
    wanted = wanted_subtrees(compute)
    return compute(await read_subtrees(session, wanted))
