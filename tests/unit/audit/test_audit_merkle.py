"""Merkle module: errors and messages, storage model, O(log n) reads."""

import hashlib

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    Frontier,
    HashSizeError,
    MemoryTree,
    ProofSizeError,
    RootMismatchError,
    TreeSizeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    new_subtree_nodes,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def leaves(count: int, salt: str = "") -> list[bytes]:
    return [leaf_hash(f"{salt}leaf {i}".encode()) for i in range(count)]


class CountingReader:
    """Wraps a MemoryTree and counts reads, to check the O(log n) promise."""

    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.reads = 0

    def get_subtree(self, level: int, index: int) -> bytes:
        self.reads += 1
        return self.tree.get_subtree(level, index)


class ShortHashReader:
    def get_subtree(self, level: int, index: int) -> bytes:
        return b"\x00" * 31


def test_hash_functions_are_rfc6962() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()
    assert len(leaf_hash(b"")) == HASH_SIZE


def test_tree_of_one_and_two_leaves() -> None:
    a, b = leaves(2)
    assert merkle_root([]) == EMPTY_ROOT
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == node_hash(a, b)
    tree = MemoryTree([a, b])
    assert tree.inclusion_proof(0) == [b]
    assert tree.inclusion_proof(1) == [a]
    assert tree.consistency_proof(1, 2) == [b]


def test_split_at_largest_power_of_two_below_size() -> None:
    h = leaves(5)
    want = node_hash(node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3])), h[4])
    assert merkle_root(h) == want
    assert MemoryTree(h).root() == want


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 3), (-1, 4)])
def test_inclusion_index_out_of_range(index: int, size: int) -> None:
    leaf = leaf_hash(b"x")
    with pytest.raises(TreeSizeError, match="is not in a tree of size"):
        verify_inclusion(index, size, leaf, [], leaf)


def test_inclusion_size_beyond_uint64() -> None:
    leaf = leaf_hash(b"x")
    with pytest.raises(TreeSizeError, match="64-bit"):
        verify_inclusion(0, MAX_TREE_SIZE + 1, leaf, [], leaf)


def test_inclusion_hash_lengths_are_checked() -> None:
    tree = MemoryTree(leaves(4))
    proof = tree.inclusion_proof(1)
    leaf, root = tree.get_subtree(0, 1), tree.root()
    with pytest.raises(HashSizeError, match="leaf hash must be 32 bytes, got 31"):
        verify_inclusion(1, 4, leaf[:31], proof, root)
    with pytest.raises(HashSizeError, match="root hash must be 32 bytes, got 0"):
        verify_inclusion(1, 4, leaf, proof, b"")
    with pytest.raises(HashSizeError, match="proof hash 1 must be 32 bytes, got 33"):
        verify_inclusion(1, 4, leaf, [proof[0], proof[1] + b"\x00"], root)


def test_inclusion_proof_length_is_checked() -> None:
    tree = MemoryTree(leaves(6))
    proof = tree.inclusion_proof(2)
    with pytest.raises(ProofSizeError, match="has 3 hashes, got 2"):
        root_from_inclusion_proof(2, 6, tree.get_subtree(0, 2), proof[:2])


def test_inclusion_wrong_root_names_both_roots() -> None:
    tree = MemoryTree(leaves(6))
    wrong = leaf_hash(b"other")
    with pytest.raises(RootMismatchError) as caught:
        verify_inclusion(2, 6, tree.get_subtree(0, 2), tree.inclusion_proof(2), wrong)
    assert caught.value.expected == wrong
    assert caught.value.calculated == tree.root()
    assert wrong.hex() in str(caught.value)


def test_consistency_parameter_errors() -> None:
    root = leaf_hash(b"x")
    with pytest.raises(TreeSizeError, match="empty tree"):
        verify_consistency(0, 5, [], root, root)
    with pytest.raises(TreeSizeError, match="empty tree"):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(TreeSizeError, match="larger than size2"):
        verify_consistency(3, 2, [], root, root)
    with pytest.raises(ProofSizeError, match="must be empty"):
        verify_consistency(3, 3, [root], root, root)
    with pytest.raises(RootMismatchError):
        verify_consistency(3, 3, [], root, leaf_hash(b"y"))
    with pytest.raises(ProofSizeError, match="cannot be empty"):
        verify_consistency(3, 4, [], root, root)
    with pytest.raises(HashSizeError, match="root1 must be 32 bytes"):
        verify_consistency(3, 4, [root], root[:8], root)


def test_consistency_proof_length_is_checked() -> None:
    tree = MemoryTree(leaves(7))
    proof = tree.consistency_proof(3, 7)
    with pytest.raises(ProofSizeError, match=f"has {len(proof)} hashes, got {len(proof) + 1}"):
        verify_consistency(3, 7, [*proof, proof[0]], tree.root(3), tree.root(7))


def test_consistency_names_the_root_that_fails() -> None:
    tree = MemoryTree(leaves(7))
    proof = tree.consistency_proof(3, 7)
    with pytest.raises(RootMismatchError, match="old tree of size 3"):
        verify_consistency(3, 7, proof, tree.root(2), tree.root(7))
    with pytest.raises(RootMismatchError, match="new tree of size 7"):
        verify_consistency(3, 7, proof, tree.root(3), tree.root(6))


def test_generation_parameter_errors() -> None:
    tree = MemoryTree(leaves(5))
    with pytest.raises(TreeSizeError, match="empty tree"):
        consistency_proof(tree, 0, 5)
    with pytest.raises(TreeSizeError, match="larger than size2"):
        consistency_proof(tree, 5, 4)
    with pytest.raises(TreeSizeError, match="not in a tree of size 5"):
        inclusion_proof(tree, 5, 5)
    with pytest.raises(TreeSizeError, match="beyond the 5 leaves stored"):
        tree.root(6)
    with pytest.raises(TreeSizeError, match="beyond the 5 leaves stored"):
        tree.consistency_proof(2, 6)
    assert tree.consistency_proof(5, 5) == []


def test_reader_gaps_and_bad_rows_surface() -> None:
    tree = MemoryTree(leaves(5))
    with pytest.raises(KeyError, match="level 1, index 2"):
        root_hash(tree, 6)
    with pytest.raises(KeyError):
        tree.get_subtree(3, 0)
    with pytest.raises(HashSizeError, match="stored subtree hash at level 0, index 0"):
        root_hash(ShortHashReader(), 1)


def test_memory_tree_stores_every_perfect_subtree() -> None:
    h = leaves(6)
    tree = MemoryTree(h)
    assert tree.size == 6
    assert tree.get_subtree(1, 2) == node_hash(h[4], h[5])
    assert tree.get_subtree(2, 0) == merkle_root(h[:4])
    with pytest.raises(KeyError):
        tree.get_subtree(2, 1)  # leaves 4..7 are not all there yet


def test_memory_tree_refuses_short_leaf_hashes() -> None:
    with pytest.raises(HashSizeError):
        MemoryTree([b"short"])


def test_frontier_is_one_hash_per_set_bit() -> None:
    h = leaves(11)
    frontier = Frontier()
    for leaf in h:
        frontier.append(leaf)
    assert frontier.size == 11
    assert [(level, index) for level, index, _ in frontier.nodes()] == [(3, 0), (1, 4), (0, 10)]
    assert frontier.root() == merkle_root(h)
    assert Frontier.from_reader(MemoryTree(h), 11).nodes() == frontier.nodes()


def test_new_subtree_nodes_for_a_batch() -> None:
    h = leaves(5)
    tree = MemoryTree(h[:3])
    rows = new_subtree_nodes(3, h[3:], tree)
    assert rows == [
        (0, 3, h[3]),
        (1, 1, node_hash(h[2], h[3])),
        (2, 0, merkle_root(h[:4])),
        (0, 4, h[4]),
    ]


def test_new_subtree_nodes_reads_only_the_old_right_edge() -> None:
    tree = MemoryTree(leaves(13))
    reader = CountingReader(tree)
    new_subtree_nodes(13, leaves(9, "new"), reader)
    assert reader.reads == bin(13).count("1")


def test_new_subtree_nodes_refuses_bad_input() -> None:
    tree = MemoryTree(leaves(2))
    with pytest.raises(HashSizeError):
        new_subtree_nodes(2, [b"\x00" * 31], tree)
    with pytest.raises(KeyError):
        new_subtree_nodes(3, leaves(1), tree)


@pytest.mark.parametrize("size", [1, 2, 3, 1000, 1023, 1024, 1025, 4097])
def test_proof_generation_reads_are_logarithmic(size: int) -> None:
    tree = MemoryTree(leaves(size))
    reader = CountingReader(tree)
    depth = (size - 1).bit_length()
    bound = 2 * depth + 1
    for index in {0, size // 3, size // 2, size - 1}:
        reader.reads = 0
        inclusion_proof(reader, index, size)
        assert reader.reads <= bound, (index, reader.reads)
    for old in {1, size // 3 or 1, size - 1 or 1, size}:
        reader.reads = 0
        consistency_proof(reader, old, size)
        assert reader.reads <= bound + 1, (old, reader.reads)
    reader.reads = 0
    root_hash(reader, size)
    assert reader.reads == bin(size).count("1")


def test_a_full_tree_refuses_more_leaves() -> None:
    class Zeros:
        def get_subtree(self, level: int, index: int) -> bytes:
            return b"\x00" * 32

    frontier = Frontier.from_reader(Zeros(), MAX_TREE_SIZE)
    assert len(frontier.nodes()) == 64
    with pytest.raises(TreeSizeError, match="full"):
        frontier.append(leaf_hash(b"one too many"))
