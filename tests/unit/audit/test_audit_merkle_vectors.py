"""Golden vectors: every transparency-dev/merkle case file and the RFC 6962 reference tree."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    leaf_hash,
    merkle_root,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

TESTDATA = Path(__file__).resolve().parents[2] / "vectors/merkle/transparency-dev/testdata"
INCLUSION_FILES = sorted((TESTDATA / "inclusion").rglob("*.json"))
CONSISTENCY_FILES = sorted((TESTDATA / "consistency").rglob("*.json"))


def _case_id(path: Path) -> str:
    return str(path.relative_to(TESTDATA))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(item) for item in case["proof"] or []]


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    path = TESTDATA.parents[1] / "rfc6962_reference_tree.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@pytest.fixture(scope="module")
def reference_tree(reference: dict[str, Any]) -> MemoryTree:
    return MemoryTree(leaf_hash(bytes.fromhex(item)) for item in reference["leaf_inputs_hex"])


def test_the_vector_folders_are_all_there() -> None:
    # Guards the parametrised tests below against an empty or half-copied folder.
    assert len(INCLUSION_FILES) == 98
    assert len(CONSISTENCY_FILES) == 98


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=_case_id)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    arguments = (
        case["leafIdx"],
        case["treeSize"],
        _b64(case["leafHash"]),
        _proof(case),
        _b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError) as caught:
            verify_inclusion(*arguments)
        assert str(caught.value)
    else:
        verify_inclusion(*arguments)


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=_case_id)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    arguments = (
        case["size1"],
        case["size2"],
        _proof(case),
        _b64(case["root1"]),
        _b64(case["root2"]),
    )
    if case["wantErr"]:
        with pytest.raises(ProofError) as caught:
            verify_consistency(*arguments)
        assert str(caught.value)
    else:
        verify_consistency(*arguments)


HAPPY_INCLUSION = [p for p in INCLUSION_FILES if p.parent.name.isdigit() and "happy" in p.name]
HAPPY_CONSISTENCY = [p for p in CONSISTENCY_FILES if p.parent.name.isdigit() and "happy" in p.name]


@pytest.mark.parametrize("path", HAPPY_INCLUSION, ids=_case_id)
def test_generated_inclusion_proof_equals_vector(path: Path, reference_tree: MemoryTree) -> None:
    case = _load(path)
    index, size = case["leafIdx"], case["treeSize"]
    assert reference_tree.root(size) == _b64(case["root"])
    assert reference_tree.get_subtree(0, index) == _b64(case["leafHash"])
    assert reference_tree.inclusion_proof(index, size) == _proof(case)


@pytest.mark.parametrize("path", HAPPY_CONSISTENCY, ids=_case_id)
def test_generated_consistency_proof_equals_vector(path: Path, reference_tree: MemoryTree) -> None:
    case = _load(path)
    size1, size2 = case["size1"], case["size2"]
    assert reference_tree.root(size1) == _b64(case["root1"])
    assert reference_tree.root(size2) == _b64(case["root2"])
    assert reference_tree.consistency_proof(size1, size2) == _proof(case)


def test_happy_paths_cover_the_reference_tree() -> None:
    assert len(HAPPY_INCLUSION) == 5
    assert len(HAPPY_CONSISTENCY) == 5


def test_reference_leaf_hashes(reference: dict[str, Any]) -> None:
    inputs = [bytes.fromhex(item) for item in reference["leaf_inputs_hex"]]
    assert [leaf_hash(item).hex() for item in inputs] == reference["leaf_hashes_hex"]


def test_reference_roots_for_every_size(
    reference: dict[str, Any], reference_tree: MemoryTree
) -> None:
    leaves = [bytes.fromhex(item) for item in reference["leaf_hashes_hex"]]
    for size, want in enumerate(reference["root_by_size_hex"]):
        assert reference_tree.root(size).hex() == want
        assert merkle_root(leaves[:size]).hex() == want


def test_reference_hasher_cases(reference: dict[str, Any]) -> None:
    cases = {case["desc"]: case for case in reference["hasher_cases"]}
    assert EMPTY_ROOT.hex() == cases["empty tree"]["want"]
    assert leaf_hash(b"").hex() == cases["leaf hash of empty input"]["want"]
    assert leaf_hash(b"L123456").hex() == cases["leaf hash of 'L123456'"]["want"]
    children = cases["HashChildren('N123','N456') (raw bytes as children)"]
    assert node_hash(b"N123", b"N456").hex() == children["want"]
