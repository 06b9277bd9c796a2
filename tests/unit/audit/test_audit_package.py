"""The audit package: its public API and its dependency promise (stdlib and PyNaCl only)."""

import json
import subprocess
import sys

import audit
import audit.keys
import audit.note


def test_every_exported_name_exists() -> None:
    assert len(audit.__all__) == len(set(audit.__all__))
    for name in audit.__all__:
        assert getattr(audit, name) is not None, name
    for name in audit.note.__all__:
        assert getattr(audit.note, name) is not None, name


def test_note_module_still_offers_the_key_classes() -> None:
    assert audit.note.Ed25519Signer is audit.keys.Ed25519Signer
    assert audit.note.Ed25519Verifier is audit.keys.Ed25519Verifier
    assert audit.note.key_id is audit.keys.key_id


def test_the_verifier_imports_only_the_standard_library_and_nacl() -> None:
    script = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import audit, audit.verify\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    roots = set(json.loads(result.stdout))
    outside = {
        root for root in roots if root not in sys.stdlib_module_names and not root.startswith("_")
    }
    assert "audit" in outside
    assert outside <= {"audit", "nacl"}, outside
