"""Property tests of the Merkle log against a direct transcription of RFC 9162 section 2.1."""

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.merkle import (
    Frontier,
    MemoryTree,
    RootMismatchError,
    leaf_hash,
    new_subtree_nodes,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

# --- RFC 9162 section 2.1, written as the RFC states it (the oracle) -------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def rfc_mth(d: Sequence[bytes]) -> bytes:
    if len(d) == 1:
        return d[0]
    k = _split(len(d))
    return node_hash(rfc_mth(d[:k]), rfc_mth(d[k:]))


def rfc_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return [*rfc_path(m, d[:k]), rfc_mth(d[k:])]
    return [*rfc_path(m - k, d[k:]), rfc_mth(d[:k])]


def rfc_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [rfc_mth(d)]
    k = _split(n)
    if m <= k:
        return [*rfc_subproof(m, d[:k], b), rfc_mth(d[k:])]
    return [*rfc_subproof(m - k, d[k:], False), rfc_mth(d[:k])]


# --- strategies ---------------------------------------------------------------------------

leaf_lists = st.lists(st.binary(max_size=16), min_size=1, max_size=140).map(
    lambda items: [leaf_hash(item) for item in items]
)


@st.composite
def tree_and_two_sizes(draw: st.DrawFn) -> tuple[list[bytes], int, int]:
    hashes = draw(leaf_lists)
    size2 = draw(st.integers(1, len(hashes)))
    size1 = draw(st.integers(1, size2))
    return hashes, size1, size2


def flip(value: bytes, bit: int) -> bytes:
    position = bit % (len(value) * 8)
    flipped = bytearray(value)
    flipped[position // 8] ^= 1 << (position % 8)
    return bytes(flipped)


# --- properties ---------------------------------------------------------------------------


@given(leaf_lists)
def test_root_equals_rfc_definition(hashes: list[bytes]) -> None:
    tree = MemoryTree(hashes)
    frontier = Frontier()
    for size, leaf in enumerate(hashes, start=1):
        frontier.append(leaf)
        assert len(frontier.nodes()) == bin(size).count("1")
    assert tree.root() == rfc_mth(hashes) == frontier.root()


@settings(max_examples=60)
@given(leaf_lists, st.data())
def test_every_inclusion_proof_is_the_rfc_one_and_verifies(
    hashes: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree(hashes)
    size = data.draw(st.integers(1, len(hashes)), label="size")
    root = tree.root(size)
    for index in range(size):
        proof = tree.inclusion_proof(index, size)
        assert proof == rfc_path(index, hashes[:size])
        verify_inclusion(index, size, hashes[index], proof, root)


@given(tree_and_two_sizes())
def test_any_two_sizes_are_consistent(case: tuple[list[bytes], int, int]) -> None:
    hashes, size1, size2 = case
    tree = MemoryTree(hashes)
    proof = tree.consistency_proof(size1, size2)
    assert proof == rfc_subproof(size1, hashes[:size2], True)
    verify_consistency(size1, size2, proof, tree.root(size1), tree.root(size2))


@given(leaf_lists, st.data())
def test_flipping_any_bit_breaks_an_inclusion_proof(
    hashes: list[bytes], data: st.DataObject
) -> None:
    tree = MemoryTree(hashes)
    size = len(hashes)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = tree.inclusion_proof(index)
    leaf, root = hashes[index], tree.root()
    targets = ["leaf", "root"] + (["proof"] if proof else [])
    target = data.draw(st.sampled_from(targets), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == "leaf":
        leaf = flip(leaf, bit)
    elif target == "root":
        root = flip(root, bit)
    else:
        position = data.draw(st.integers(0, len(proof) - 1), label="position")
        proof[position] = flip(proof[position], bit)
    with pytest.raises(RootMismatchError):
        verify_inclusion(index, size, leaf, proof, root)


@given(tree_and_two_sizes(), st.data())
def test_flipping_any_bit_breaks_a_consistency_proof(
    case: tuple[list[bytes], int, int], data: st.DataObject
) -> None:
    hashes, size1, size2 = case
    tree = MemoryTree(hashes)
    proof = tree.consistency_proof(size1, size2)
    root1, root2 = tree.root(size1), tree.root(size2)
    targets = ["root1", "root2"] + (["proof"] if proof else [])
    target = data.draw(st.sampled_from(targets), label="target")
    bit = data.draw(st.integers(0, 255), label="bit")
    if target == "root1":
        root1 = flip(root1, bit)
    elif target == "root2":
        root2 = flip(root2, bit)
    else:
        position = data.draw(st.integers(0, len(proof) - 1), label="position")
        proof[position] = flip(proof[position], bit)
    with pytest.raises(RootMismatchError):
        verify_consistency(size1, size2, proof, root1, root2)


@given(leaf_lists, st.lists(st.integers(1, 40), max_size=8))
def test_sequencer_batches_store_exactly_the_memory_tree_rows(
    hashes: list[bytes], batch_sizes: list[int]
) -> None:
    stored: dict[tuple[int, int], bytes] = {}

    class TableReader:
        def get_subtree(self, level: int, index: int) -> bytes:
            return stored[(level, index)]

    size = 0
    for batch in [*batch_sizes, len(hashes)]:
        new = hashes[size : size + batch]
        for level, index, value in new_subtree_nodes(size, new, TableReader()):
            assert (level, index) not in stored  # insert-only: no row is written twice
            stored[(level, index)] = value
        size += len(new)
    tree = MemoryTree(hashes)
    expected = {}
    for level in range(len(hashes).bit_length()):
        for index in range(len(hashes) >> level):
            expected[(level, index)] = tree.get_subtree(level, index)
    assert stored == expected
