"""Evidence file keys sealed to the parties: each file's key is sealed at upload to the
requesting and the requested participant's encryption keys, and a party opens its own copy
of the stored, still-sealed file with its own private key (``open_sealed_evidence``). The
download is a logged consultation; erasure destroys every copy (P17)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import Engine, text

from broker.client import EncryptionKeyFile, ExportError, open_sealed_evidence
from broker.core import crypto
from tests.conftest import Api
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    REQUESTING,
    FakeClock,
    call,
    fire,
    get_case,
    set_clocks,
    to_execution,
    upload,
    use_clock,
)
from tests.integration.test_export import _consultations, _self_held_encryption_key
from tests.integration.test_retention import at, erase_at

WHY = {"justification": "filing the bank records with our own archive"}
CONTENT = b"%PDF-1.7 bank statements, account 0042 " * 40_000  # over one chunk


def _sealed(api: Api, case_id: str, file_id: str, who: str = DRAFTER) -> Any:
    return call(api, "GET", f"/v1/cases/{case_id}/evidence/{file_id}/sealed", who, params=WHY)


def _open(key: EncryptionKeyFile, file_id: str, r: Any, data: bytes | None = None) -> bytes:
    """Open a sealed download (its headers and body, or ``data``) with ``key``."""
    return open_sealed_evidence(
        key,
        file_id=file_id,
        sealed_key=r.headers["x-sealed-key"],
        enc_kid=r.headers["x-enc-kid"],
        chunk_count=int(r.headers["x-chunk-count"]),
        sha256=r.headers["x-content-sha256"],
        data=io.BytesIO(r.content if data is None else data),
    )


def test_a_party_opens_its_copy_with_its_own_key(api: Api, sync_engine: Engine) -> None:
    use_clock(api, FakeClock())
    set_clocks(api, {}, retention=dt.timedelta(days=30))
    key = _self_held_encryption_key(api, REQUESTING)
    case = to_execution(api)
    file_id = upload(api, case["id"], DRAFTER, CONTENT)

    r = _sealed(api, case["id"], file_id)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert CONTENT[:40] not in r.content  # still sealed as stored
    opened = _open(key, file_id, r)
    assert opened == CONTENT
    assert int(r.headers["x-chunk-count"]) >= 2
    (leaf,) = [x for x in _consultations(sync_engine) if x.get("object") == "evidence_sealed"]
    assert leaf["evidence_id"] == file_id

    stranger = EncryptionKeyFile(REQUESTING, key.kid, crypto.generate_box_key()[0])
    with pytest.raises(ExportError, match="does not open"):
        _open(stranger, file_id, r)
    tampered = bytearray(r.content)
    tampered[100] ^= 1
    with pytest.raises(ExportError, match="does not open"):
        _open(key, file_id, r, data=bytes(tampered))

    # The other side holds no copy of a file not delivered to it; no justification: 422.
    assert _sealed(api, case["id"], file_id, who=HANDLER).status_code == 404
    bare = call(api, "GET", f"/v1/cases/{case['id']}/evidence/{file_id}/sealed", DRAFTER)
    assert bare.status_code == 422

    # Erasure destroys every copy of the key.
    fire(api, case["id"], "withdraw", DRAFTER, {"reason": "Discontinued."})
    erase_at(api, at(get_case(api, case["id"])["retention_until"]))
    with sync_engine.connect() as c:
        keys = c.execute(
            text(
                "SELECT key_for_node, key_for_requesting, key_for_requested "
                "FROM evidence_files WHERE id = :f"
            ),
            {"f": file_id},
        ).one()
    assert tuple(keys) == (None, None, None)
    assert _sealed(api, case["id"], file_id).status_code == 410


def test_a_file_without_a_partys_copy_gets_one_in_the_next_pass(
    api: Api, sync_engine: Engine
) -> None:
    """A file uploaded before revision 0013 (or while a party had no encryption key) has the
    node's copy only; the erasure pass seals its key to the party's current key, and the
    party then opens its own copy."""
    use_clock(api, FakeClock())
    set_clocks(api, {}, retention=dt.timedelta(days=30))
    key = _self_held_encryption_key(api, REQUESTING)
    case = to_execution(api)
    file_id = upload(api, case["id"], DRAFTER, CONTENT)
    with sync_engine.begin() as c:
        c.execute(
            text(
                "UPDATE evidence_files SET key_for_requesting = NULL, requesting_enc_kid = NULL "
                "WHERE id = :f"
            ),
            {"f": file_id},
        )
    assert _sealed(api, case["id"], file_id).status_code == 409

    done = erase_at(api, dt.datetime.now(dt.UTC))
    assert done.sealed == 1
    assert done.messages == []
    r = _sealed(api, case["id"], file_id)
    assert r.status_code == 200, r.text
    assert r.headers["x-enc-kid"] == key.kid
    opened = _open(key, file_id, r)
    assert opened == CONTENT
    assert erase_at(api, dt.datetime.now(dt.UTC)).sealed == 0  # an existing copy stays
