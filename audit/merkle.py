"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs for the audit log.

What this module guarantees
---------------------------
* `leaf_hash`, `node_hash` and `EMPTY_ROOT` are exactly RFC 6962 section 2.1 with SHA-256:
  leaf ``SHA-256(0x00 || d)``, interior node ``SHA-256(0x01 || left || right)``, empty tree
  ``SHA-256("")``. A tree of n leaves splits at the largest power of two below n.
* Proofs are in the RFC 9162 format (section 2.1.3 inclusion, section 2.1.4 consistency):
  a list of 32-byte hashes, lowest level first.
* `verify_inclusion` and `verify_consistency` return ``None`` or raise a `ProofError`
  subclass saying what is wrong; they never return a boolean that could be ignored. Every
  hash they use must be 32 bytes, a consistency proof from size 0 is refused, and sizes
  are unsigned 64-bit as on the wire.
* Proof generation reads O(log n) stored hashes through a `HashReader`.

Storage model
-------------
The broker keeps one insert-only table of rows ``(level, index, hash)``, one row per
*perfect subtree*: the subtree of ``2**level`` leaves that starts at leaf
``index * 2**level``. Level 0 rows are the leaf hashes. A perfect subtree's hash depends
only on its own leaves, so a row is written once, when its last leaf is sequenced, and
never changes; a tree of n leaves has fewer than 2n rows.

Any RFC 6962 subtree hash ``MTH(D[a:b])`` is the right-to-left fold of the perfect subtrees
given by the binary digits of ``b - a``, at most ``log2(n) + 1`` rows. The root, an
inclusion proof and a consistency proof each need O(log n) row reads (at most one
non-perfect subtree per proof), which `root_hash`, `inclusion_proof` and
`consistency_proof` do through the `HashReader` protocol.

When the sequencer appends a batch, `new_subtree_nodes` returns exactly the rows to insert
(the new leaves and every perfect subtree they complete). It reads only the rows on the
old tree's right edge (one per set bit of the old size). `MemoryTree` is the in-memory
implementation of the same model; `Frontier` keeps only the right edge (O(log n) hashes)
to compute a root while streaming.
"""

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Protocol

HASH_SIZE = 32
"""Bytes in every hash of the tree (SHA-256)."""

MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes and leaf indices are unsigned 64-bit integers on the wire."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""Root hash of the empty tree, ``SHA-256("")``."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """A Merkle proof, or the parameters it was asked for, is invalid."""


class HashSizeError(ProofError):
    """A hash is not 32 bytes long."""


class TreeSizeError(ProofError):
    """A tree size or leaf index is out of range, or the sizes cannot have a proof."""


class ProofSizeError(ProofError):
    """A proof has the wrong number of hashes for the sizes and index it claims."""


class RootMismatchError(ProofError):
    """The root computed from a proof differs from the expected root."""

    def __init__(self, what: str, expected: bytes, calculated: bytes) -> None:
        self.expected = expected
        self.calculated = calculated
        super().__init__(
            f"{what}: calculated root {calculated.hex()} does not match expected {expected.hex()}"
        )


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


class HashReader(Protocol):
    """Read access to stored perfect-subtree hashes (see the module docstring)."""

    def get_subtree(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree of ``2**level`` leaves starting at ``index * 2**level``.

        Raises:
            LookupError: (for example `KeyError`) that subtree is not stored.
        """
        ...


SubtreeHash = tuple[int, int, bytes]
"""One stored row ``(level, index, hash)``: the hash of a perfect subtree (see above)."""


def _check_hash(what: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise HashSizeError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_size(what: str, value: int) -> None:
    if not 0 <= value <= MAX_TREE_SIZE:
        raise TreeSizeError(f"{what} {value} is not an unsigned 64-bit integer")


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_pieces(start: int, end: int) -> list[tuple[int, int]]:
    """(level, index) of the perfect subtrees that tile leaves [start, end), left to right.

    Requires an RFC 6962 subtree: start is a multiple of a power of two >= end - start, so
    the pieces are given by the binary digits of end - start, largest first.
    """
    pieces = []
    width = end - start
    for level in reversed(range(width.bit_length())):
        if (width >> level) & 1:
            pieces.append((level, start >> level))
            start += 1 << level
    return pieces


def _read(reader: HashReader, level: int, index: int) -> bytes:
    value = reader.get_subtree(level, index)
    _check_hash(f"stored subtree hash at level {level}, index {index}", value)
    return value


def _range_hash(reader: HashReader, start: int, end: int) -> bytes:
    """MTH(D[start:end]) of an RFC 6962 subtree, from popcount(end - start) stored rows."""
    if start == end:
        return EMPTY_ROOT
    pieces = [_read(reader, level, index) for level, index in _perfect_pieces(start, end)]
    result = pieces[-1]
    for piece in reversed(pieces[:-1]):
        result = node_hash(piece, result)
    return result


def root_hash(reader: HashReader, size: int) -> bytes:
    """Root hash of the first ``size`` leaves, from at most ``log2(size) + 1`` reads.

    Raises:
        TreeSizeError: size is not an unsigned 64-bit integer.
        HashSizeError: the reader returned a hash that is not 32 bytes.
        LookupError: the reader lacks a needed subtree (size exceeds what is stored).
    """
    _check_size("tree size", size)
    return _range_hash(reader, 0, size)


def inclusion_proof(reader: HashReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves.

    Reads O(log size) stored rows.

    Raises:
        TreeSizeError: not ``0 <= index < size <= 2**64 - 1``.
        HashSizeError: the reader returned a hash that is not 32 bytes.
        LookupError: the reader lacks a needed subtree (size exceeds what is stored).
    """
    _check_size("tree size", size)
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is not in a tree of size {size}")
    top_down: list[bytes] = []
    start, width, offset = 0, size, index
    while width > 1:
        k = _largest_power_of_two_below(width)
        if offset < k:
            top_down.append(_range_hash(reader, start + k, start + width))
            width = k
        else:
            top_down.append(_range_hash(reader, start, start + k))
            start, offset, width = start + k, offset - k, width - k
    return top_down[::-1]


def consistency_proof(reader: HashReader, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 consistency proof from the tree of ``size1`` leaves to that of ``size2``.

    The proof is empty when the sizes are equal. Reads O(log size2) stored rows.

    Raises:
        TreeSizeError: not ``0 < size1 <= size2 <= 2**64 - 1`` (RFC 9162 defines no proof
            from the empty tree).
        HashSizeError: the reader returned a hash that is not 32 bytes.
        LookupError: the reader lacks a needed subtree (size2 exceeds what is stored).
    """
    _check_consistency_sizes(size1, size2)
    top_down: list[bytes] = []
    start, old, width, whole_old_tree = 0, size1, size2, True
    while old != width:
        k = _largest_power_of_two_below(width)
        if old <= k:
            top_down.append(_range_hash(reader, start + k, start + width))
            width = k
        else:
            top_down.append(_range_hash(reader, start, start + k))
            start, old, width = start + k, old - k, width - k
            whole_old_tree = False
    if not whole_old_tree:
        top_down.append(_range_hash(reader, start, start + width))
    return top_down[::-1]


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof into its inner part (below the point where the paths to
    ``index`` and ``size - 1`` meet) and its border part (left siblings above it)."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash up from ``seed`` at ``index`` of its level through siblings on either side."""
    for level, element in enumerate(proof):
        seed = node_hash(element, seed) if (index >> level) & 1 else node_hash(seed, element)
    return seed


def _chain_inner_left_only(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like `_chain_inner` but skipping right siblings: the same subtree before they existed."""
    for level, element in enumerate(proof):
        if (index >> level) & 1:
            seed = node_hash(element, seed)
    return seed


def _chain_border(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Hash up the right border, where every sibling is on the left."""
    for element in proof:
        seed = node_hash(element, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree of ``size``.

    Raises:
        TreeSizeError: not ``0 <= index < size <= 2**64 - 1``.
        HashSizeError: the leaf hash or a proof hash is not 32 bytes.
        ProofSizeError: the proof has the wrong number of hashes for index and size.
    """
    _check_size("tree size", size)
    if not 0 <= index < size:
        raise TreeSizeError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf)
    for position, element in enumerate(proof):
        _check_hash(f"proof hash {position}", element)
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofSizeError(
            f"an inclusion proof for leaf {index} in a tree of size {size} has "
            f"{inner + border} hashes, got {len(proof)}"
        )
    return _chain_border(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash ``leaf`` is at ``index`` in the tree of ``size`` with ``root``.

    Raises:
        TreeSizeError: not ``0 <= index < size <= 2**64 - 1``.
        HashSizeError: the root, the leaf hash or a proof hash is not 32 bytes.
        ProofSizeError: the proof has the wrong number of hashes for index and size.
        RootMismatchError: the proof does not lead to ``root``.
    """
    _check_hash("root hash", root)
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    if not hmac.compare_digest(calculated, root):
        raise RootMismatchError(f"inclusion proof for leaf {index}", root, calculated)


def _check_consistency_sizes(size1: int, size2: int) -> None:
    _check_size("size1", size1)
    _check_size("size2", size2)
    if size1 > size2:
        raise TreeSizeError(f"size1 {size1} is larger than size2 {size2}")
    if size1 == 0:
        raise TreeSizeError("a consistency proof from the empty tree (size1 = 0) is meaningless")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    When ``size1 == size2`` the proof must be empty and the roots identical; that case
    compares the roots and nothing else.

    Raises:
        TreeSizeError: not ``0 < size1 <= size2 <= 2**64 - 1``.
        HashSizeError: a root or a proof hash is not 32 bytes.
        ProofSizeError: the proof has the wrong number of hashes for the sizes.
        RootMismatchError: the proof does not lead to ``root1`` or to ``root2``.
    """
    _check_consistency_sizes(size1, size2)
    if size1 == size2:
        if proof:
            raise ProofSizeError(
                f"sizes are equal ({size1}), so the proof must be empty; got {len(proof)} hashes"
            )
        if not hmac.compare_digest(root1, root2):
            raise RootMismatchError(f"trees of equal size {size1}", root1, root2)
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for position, element in enumerate(proof):
        _check_hash(f"proof hash {position}", element)
    if not proof:
        raise ProofSizeError(f"a consistency proof from {size1} to {size2} cannot be empty")

    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    # The old tree's rightmost perfect subtree (2**shift leaves) starts the chain. It is the
    # whole old tree when size1 is a power of two; otherwise the proof carries it first.
    carried = 0 if size1 == 1 << shift else 1
    seed, rest = (root1, proof) if carried == 0 else (proof[0], proof[1:])
    expected = carried + inner + border
    if len(proof) != expected:
        raise ProofSizeError(
            f"a consistency proof from {size1} to {size2} has {expected} hashes, got {len(proof)}"
        )
    mask = (size1 - 1) >> shift
    old = _chain_border(_chain_inner_left_only(seed, rest[:inner], mask), rest[inner:])
    if not hmac.compare_digest(old, root1):
        raise RootMismatchError(f"consistency proof, old tree of size {size1}", root1, old)
    new = _chain_border(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if not hmac.compare_digest(new, root2):
        raise RootMismatchError(f"consistency proof, new tree of size {size2}", root2, new)


class Frontier:
    """The right edge of a growing tree: one perfect-subtree hash per set bit of its size.

    Memory is O(log n) whatever the number of leaves appended, so a verifier can compute
    the root of a stream of any length.
    """

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[SubtreeHash] = []  # left to right, strictly decreasing levels

    @classmethod
    def from_reader(cls, reader: HashReader, size: int) -> "Frontier":
        """The frontier of the first ``size`` stored leaves, from popcount(size) reads.

        Raises:
            TreeSizeError: size is not an unsigned 64-bit integer.
            HashSizeError: the reader returned a hash that is not 32 bytes.
            LookupError: the reader lacks a needed subtree.
        """
        _check_size("tree size", size)
        frontier = cls()
        for level, index in _perfect_pieces(0, size):
            frontier._edge.append((level, index, _read(reader, level, index)))
        frontier._size = size
        return frontier

    @property
    def size(self) -> int:
        return self._size

    def nodes(self) -> tuple[SubtreeHash, ...]:
        """The perfect subtrees on the right edge, left to right."""
        return tuple(self._edge)

    def append(self, leaf: bytes) -> list[SubtreeHash]:
        """Append one leaf hash; return the perfect subtrees it completes, leaf first.

        Raises:
            HashSizeError: the leaf hash is not 32 bytes.
            TreeSizeError: the tree already has 2**64 - 1 leaves.
        """
        _check_hash("leaf hash", leaf)
        if self._size == MAX_TREE_SIZE:
            raise TreeSizeError("the tree is full (2**64 - 1 leaves)")
        position = self._size
        level, current = 0, leaf
        completed: list[SubtreeHash] = [(0, position, leaf)]
        while self._edge and self._edge[-1][0] == level:
            left = self._edge.pop()[2]
            level += 1
            current = node_hash(left, current)
            completed.append((level, position >> level, current))
        self._edge.append(completed[-1])
        self._size += 1
        return completed

    def root(self) -> bytes:
        """Root hash of the leaves appended so far (`EMPTY_ROOT` when none)."""
        if not self._edge:
            return EMPTY_ROOT
        result = self._edge[-1][2]
        for _, _, value in reversed(self._edge[:-1]):
            result = node_hash(value, result)
        return result


def merkle_root(leaf_hashes: Iterable[bytes]) -> bytes:
    """Root hash of a list of leaf hashes, in O(log n) memory.

    Raises:
        HashSizeError: a leaf hash is not 32 bytes.
    """
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


def new_subtree_nodes(
    existing_size: int, new_leaf_hashes: Iterable[bytes], reader: HashReader
) -> list[SubtreeHash]:
    """Rows to insert when ``new_leaf_hashes`` are appended after ``existing_size`` leaves.

    Returns every new leaf row and every perfect subtree the batch completes, in an order
    where each row's children come before it. Reads only the popcount(existing_size) rows on
    the old right edge.

    Raises:
        TreeSizeError: existing_size is not an unsigned 64-bit integer, or the batch would
            overflow it.
        HashSizeError: a new leaf hash, or a stored hash, is not 32 bytes.
        LookupError: the reader lacks a row of the existing tree.
    """
    frontier = Frontier.from_reader(reader, existing_size)
    rows: list[SubtreeHash] = []
    for leaf in new_leaf_hashes:
        rows.extend(frontier.append(leaf))
    return rows


class MemoryTree:
    """In-memory `HashReader` that stores every perfect subtree hash (fewer than 2n).

    Root and proofs for any size up to the current one take O(log n) reads.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = []
        self._frontier = Frontier()
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash.

        Raises:
            HashSizeError: the leaf hash is not 32 bytes.
        """
        for level, index, value in self._frontier.append(leaf):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(value)
            assert len(self._levels[level]) == index + 1

    def get_subtree(self, level: int, index: int) -> bytes:
        """See `HashReader.get_subtree`.

        Raises:
            KeyError: no complete perfect subtree at (level, index).
        """
        if 0 <= level < len(self._levels) and 0 <= index < len(self._levels[level]):
            return self._levels[level][index]
        raise KeyError(f"no perfect subtree at level {level}, index {index} (size {self.size})")

    def _size_or_current(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise TreeSizeError(f"tree size {size} is beyond the {self.size} leaves stored")
        return size

    def root(self, size: int | None = None) -> bytes:
        """Root hash at ``size`` (default: all leaves).

        Raises:
            TreeSizeError: size is negative or beyond the stored leaves.
        """
        return root_hash(self, self._size_or_current(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof of leaf ``index`` at ``size`` (default: all leaves).

        Raises:
            TreeSizeError: size is beyond the stored leaves, or index is not below size.
        """
        return inclusion_proof(self, index, self._size_or_current(size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Consistency proof from ``size1`` to ``size2`` (default: all leaves).

        Raises:
            TreeSizeError: not ``0 < size1 <= size2 <=`` the stored leaves.
        """
        return consistency_proof(self, size1, self._size_or_current(size2))
