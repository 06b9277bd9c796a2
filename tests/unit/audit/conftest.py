"""Fixtures for the audit library tests: golden vector folders and deterministic keys."""

from pathlib import Path

import pytest

from audit.cosignature import CosignatureSigner
from audit.keys import Ed25519Signer

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


@pytest.fixture(scope="session")
def merkle_vectors() -> Path:
    return VECTORS / "merkle"


@pytest.fixture(scope="session")
def note_vectors() -> Path:
    return VECTORS / "signed-note"


@pytest.fixture(scope="session")
def log_signer() -> Ed25519Signer:
    return Ed25519Signer("audit.example/log", bytes(range(32)))


@pytest.fixture(scope="session")
def witness_signer() -> CosignatureSigner:
    return CosignatureSigner("witness.example/w1", bytes(range(32, 64)), lambda: 1_700_000_000)
