"""The sequenced audit log through the API: checkpoints, entries, proofs, exports, and who may
see what (AUDIT.md; RFC 9162; c2sp.org/tlog-checkpoint)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text

from audit import (
    EMPTY_ROOT,
    Ed25519Verifier,
    leaf_hash,
    merkle_root,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from broker.cli import main as palermo
from broker.core import migrate
from broker.core.db import Database
from broker.oversight.models import AuditEvent
from broker.oversight.sequencer import SequencerError, log_signer, sequence_batch
from broker.oversight.service import AuditKind, audit_row
from tests.conftest import Api, count_rows
from tests.integration.audit_helpers import (
    export,
    run_scenario,
    sequence,
    verifier_key,
    verify,
)


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_every_leaf_is_sequenced_under_a_signed_checkpoint(api: Api, sync_engine: Engine) -> None:
    assert api.get("/v1/audit/checkpoint", as_="oversight").status_code == 404
    run_scenario(api)
    assert count_rows(sync_engine, "audit_unsequenced") == 0
    body = api.get("/v1/audit/checkpoint", as_="oversight").json()
    assert body["size"] == count_rows(sync_engine, "audit_events")
    assert body["origin"] == api.settings.node_id
    assert body["verifier_key"] == verifier_key(api.settings)
    checkpoint = open_checkpoint(
        body["note"], Ed25519Verifier.from_vkey(body["verifier_key"]), origin="test.palermo"
    )
    assert checkpoint.size == body["size"]
    with sync_engine.connect() as conn:
        leaves = [
            bytes(row[0])
            for row in conn.execute(
                text(
                    "SELECT e.leaf FROM audit_log l JOIN audit_events e ON e.id = l.event_ref "
                    "ORDER BY l.idx"
                )
            )
        ]
        indices = [row[0] for row in conn.execute(text("SELECT idx FROM audit_log ORDER BY idx"))]
    assert indices == list(range(checkpoint.size))
    assert checkpoint.root_hash == merkle_root(leaf_hash(leaf) for leaf in leaves)
    assert base64.b64encode(checkpoint.root_hash).decode() == body["root_hash"]


def test_a_run_with_nothing_queued_signs_nothing_new(api: Api, sync_engine: Engine) -> None:
    assert sequence(api.settings) > 0
    first = api.get("/v1/audit/checkpoint", as_="oversight").json()
    assert sequence(api.settings) == 0
    assert count_rows(sync_engine, "audit_checkpoints") == 1
    assert api.get("/v1/audit/checkpoint", as_="oversight").json()["note"] == first["note"]


def test_the_first_run_on_an_empty_log_signs_the_empty_tree(api: Api, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate.upgrade(url)
    settings = api.settings.model_copy(update={"database_url": url})
    assert sequence(settings) == 0
    verifier = Ed25519Verifier.from_vkey(verifier_key(settings))

    async def latest() -> str:
        db = Database(url, pool_size=1)
        try:
            async with db.session() as session:
                note = await session.scalar(text("SELECT note FROM audit_checkpoints"))
                return str(note)
        finally:
            await db.dispose()

    checkpoint = open_checkpoint(asyncio.run(latest()), verifier)
    assert (checkpoint.size, checkpoint.root_hash) == (0, EMPTY_ROOT)


def test_a_batch_limit_gives_one_checkpoint_per_batch(api: Api, sync_engine: Engine) -> None:
    total = count_rows(sync_engine, "audit_events")
    assert sequence(api.settings, batch_size=7) == total
    sizes = [
        row[0]
        for row in sync_engine.connect().execute(
            text("SELECT size FROM audit_checkpoints ORDER BY size")
        )
    ]
    assert sizes == [*range(7, total, 7), total]


def _insert_events(sync_engine: Engine, count: int, participant: str = "de.bka") -> None:
    rows = [
        audit_row(
            kind=AuditKind.PARTICIPANT_UPDATED,
            node="test.palermo",
            actor=None,
            participant_id=participant,
            participant=participant,
        )
        for _ in range(count)
    ]
    with sync_engine.begin() as conn:
        conn.execute(insert(AuditEvent), rows)


def test_concurrent_sequencers_write_one_dense_log(api: Api, sync_engine: Engine) -> None:
    _insert_events(sync_engine, 300)
    total = count_rows(sync_engine, "audit_events")
    settings = api.settings
    signer = log_signer(settings.node_id, settings.node_signing_seed)

    async def one(db: Database) -> int:
        added = 0
        while True:
            async with db.session() as session:
                batch = await sequence_batch(
                    session,
                    signer=signer,
                    origin=settings.node_id,
                    batch_size=25,
                )
                await session.commit()
            assert batch is not None
            added += batch.added
            if batch.added == 0:
                return added

    async def race() -> list[int]:
        dbs = [Database(settings.resolved_database_url, pool_size=1) for _ in range(4)]
        try:
            return list(await asyncio.gather(*(one(db) for db in dbs)))
        finally:
            for db in dbs:
                await db.dispose()

    assert sum(asyncio.run(race())) == total
    with sync_engine.connect() as conn:
        indices = [r[0] for r in conn.execute(text("SELECT idx FROM audit_log ORDER BY idx"))]
        refs = conn.execute(text("SELECT count(DISTINCT event_ref) FROM audit_log")).scalar_one()
        notes = [r[0] for r in conn.execute(text("SELECT note FROM audit_checkpoints"))]
    assert indices == list(range(total))
    assert refs == total
    bundle = export(api)
    assert verify(Path(api.settings.data_dir), bundle, verifier_key(settings), notes).code == 0


def test_an_event_committed_late_is_sequenced_by_a_later_batch(
    api: Api, sync_engine: Engine
) -> None:
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: no transaction can stay open meanwhile")
    sequence(api.settings)
    before = count_rows(sync_engine, "audit_log")
    with sync_engine.connect() as slow:
        slow.begin()
        slow.execute(
            insert(AuditEvent),
            [audit_row(kind=AuditKind.ACCOUNT_UPDATED, node="n", actor=None, participant_id="x")],
        )
        _insert_events(sync_engine, 2)  # later ids, committed first
        assert sequence(api.settings) == 2
        slow.commit()
    assert sequence(api.settings) == 1
    assert count_rows(sync_engine, "audit_log") == before + 3
    assert count_rows(sync_engine, "audit_unsequenced") == 0


def test_a_second_sequencer_does_not_wait_for_the_first(api: Api, sync_engine: Engine) -> None:
    if sync_engine.dialect.name != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's; SQLite queues writers instead")
    settings = api.settings
    signer = log_signer(settings.node_id, settings.node_signing_seed)

    async def go() -> None:
        db = Database(settings.resolved_database_url, pool_size=2)
        try:
            async with db.session() as first, db.session() as second:
                kw = {"signer": signer, "origin": settings.node_id, "batch_size": 10}
                assert await sequence_batch(first, **kw) is not None  # type: ignore[arg-type]
                assert await sequence_batch(second, wait=False, **kw) is None  # type: ignore[arg-type]
                await first.commit()
                batch = await sequence_batch(second, wait=False, **kw)  # type: ignore[arg-type]
                assert batch is not None
                assert batch.size > 10
        finally:
            await db.dispose()

    asyncio.run(go())


def test_the_sequencer_refuses_to_sign_over_a_changed_tree(api: Api, sync_engine: Engine) -> None:
    sequence(api.settings)
    _insert_events(sync_engine, 1)
    with sync_engine.begin() as conn:
        if sync_engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_nodes DISABLE TRIGGER ALL"))
        else:
            conn.execute(text("DROP TRIGGER audit_nodes_no_update"))
        # The largest perfect subtree from leaf 0 is on the right edge the sequencer reads.
        conn.execute(
            text(
                "UPDATE audit_nodes SET hash = :h WHERE idx = 0 "
                "AND level = (SELECT max(level) FROM audit_nodes)"
            ),
            {"h": bytes(32)},
        )
    with pytest.raises(SequencerError, match="does not hash to the root"):
        sequence(api.settings)
    assert count_rows(sync_engine, "audit_unsequenced") == 1


# -- entries and who sees them ------------------------------------------------------------


def _kinds(api: Api, login: str) -> list[tuple[str, str | None]]:
    size = api.get("/v1/audit/checkpoint", as_=login).json()["size"]
    seen: list[tuple[str, str | None]] = []
    start = 0
    while start < size:
        r = api.get("/v1/audit/entries", as_=login, params={"start": start})
        assert r.status_code == 200, r.text
        page = r.json()
        for entry in page["entries"]:
            leaf = b64(entry["leaf"])
            assert b64(entry["leaf_hash"]) == leaf_hash(leaf)
            assert json.loads(leaf)["kind"] == entry["kind"]
            seen.append((entry["kind"], entry["message_id"]))
        start = page["next"] if page["next"] is not None else size
    return seen


def test_oversight_sees_every_entry_and_participants_their_own(api: Api) -> None:
    scenario = run_scenario(api, messages=2)
    first, second = scenario.message_ids
    everything = _kinds(api, "oversight")
    assert len(everything) == api.get("/v1/audit/checkpoint", as_="oversight").json()["size"]

    sender = _kinds(api, "de.system")
    assert ("message:refused", scenario.refused_id) in sender
    for mid in (first, second):
        assert ("message:accepted", mid) in sender
        assert ("message:delivered", mid) in sender
    assert ("message:receipted", first) in sender
    assert ("content:consulted", first) not in sender  # the recipient's consultation
    assert ("participant:registered", None) in sender  # de.bka's own registration
    assert all(kind != "account:created" or mid is None for kind, mid in sender)

    recipient = _kinds(api, "it.officer")
    assert ("content:consulted", first) in recipient
    assert ("message:accepted", first) in recipient
    assert ("message:receipted", first) in recipient
    assert ("message:refused", scenario.refused_id) not in recipient  # never disclosed

    other = _kinds(api, "nl.officer")
    assert not {mid for _, mid in other} & {first, second, scenario.refused_id}
    assert len(other) < len(recipient) < len(everything)


def test_entry_ranges_are_bounded_and_checked(api: Api) -> None:
    sequence(api.settings)
    size = api.get("/v1/audit/checkpoint", as_="oversight").json()["size"]
    page = api.get("/v1/audit/entries", as_="oversight", params={"start": 2, "end": 5}).json()
    assert [e["index"] for e in page["entries"]] == [2, 3, 4]
    assert (page["tree_size"], page["end"], page["next"]) == (size, 5, 5)
    last = api.get("/v1/audit/entries", as_="oversight", params={"start": size - 1}).json()
    assert last["next"] is None
    assert [e["index"] for e in last["entries"]] == [size - 1]
    page_size = api.settings.audit_page_size
    for params, field in [
        ({"start": 5, "end": 2}, "end"),
        ({"start": 0, "end": size + 1}, "end"),
        ({"start": size + 1}, "start"),
        ({"start": -1}, "query.start"),
        ({"start": 0, "end": page_size + 1}, "end"),
    ]:
        r = api.get("/v1/audit/entries", as_="oversight", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body.get("field", body.get("errors", [{}])[0].get("field")) == field, body


# -- proofs -------------------------------------------------------------------------------


def _checkpoint(api: Api, login: str = "oversight") -> tuple[int, bytes]:
    body = api.get("/v1/audit/checkpoint", as_=login).json()
    verifier = Ed25519Verifier.from_vkey(verifier_key(api.settings))
    checkpoint = open_checkpoint(body["note"], verifier)
    return checkpoint.size, checkpoint.root_hash


def _check_inclusion(body: dict[str, object], size: int, root: bytes) -> list[dict[str, object]]:
    assert body["tree_size"] == size
    assert b64(str(body["root_hash"])) == root
    proofs = body["proofs"]
    assert isinstance(proofs, list)
    assert proofs
    for proof in proofs:
        entry = proof["entry"]
        leaf = b64(entry["leaf"])
        hashes = [b64(h) for h in proof["hashes"]]
        verify_inclusion(entry["index"], size, leaf_hash(leaf), hashes, root)
    return [p["entry"] for p in proofs]


def test_inclusion_proofs_by_index_event_and_message(api: Api) -> None:
    scenario = run_scenario(api, messages=2)
    size, root = _checkpoint(api)
    first = scenario.message_ids[0]
    for index in (0, size // 2, size - 1):
        r = api.get("/v1/audit/proofs/inclusion", as_="oversight", params={"index": index})
        assert r.status_code == 200, r.text
        assert [e["index"] for e in _check_inclusion(r.json(), size, root)] == [index]
        assert r.json()["checkpoint"] is not None
    r = api.get("/v1/audit/proofs/inclusion", as_="de.system", params={"message_id": first})
    entries = _check_inclusion(r.json(), size, root)
    assert [e["kind"] for e in entries] == [
        "message:accepted",
        "message:delivered",
        "message:receipted",
    ]
    r = api.get("/v1/audit/proofs/inclusion", as_="it.officer", params={"message_id": first})
    assert "content:consulted" in [e["kind"] for e in _check_inclusion(r.json(), size, root)]
    event_id = entries[1]["event_id"]
    r = api.get("/v1/audit/proofs/inclusion", as_="it.officer", params={"event_id": event_id})
    assert [e["event_id"] for e in _check_inclusion(r.json(), size, root)] == [event_id]
    # At an earlier tree size, against the checkpoint the auditor kept then.
    old_size = entries[0]["index"] + 1  # type: ignore[operator]
    r = api.get(
        "/v1/audit/proofs/inclusion",
        as_="oversight",
        params={"event_id": entries[0]["event_id"], "tree_size": old_size},
    )
    held = open_checkpoint(
        str(r.json()["checkpoint"]), Ed25519Verifier.from_vkey(verifier_key(api.settings))
    )
    assert held.size == old_size
    _check_inclusion(r.json(), old_size, held.root_hash)


def test_a_participant_gets_no_proof_of_what_it_may_not_see(api: Api) -> None:
    scenario = run_scenario(api, messages=1)
    first = scenario.message_ids[0]
    for login, params in [
        ("nl.officer", {"message_id": first}),
        ("it.officer", {"message_id": scenario.refused_id}),
        ("nl.officer", {"index": 0}),
    ]:
        r = api.get("/v1/audit/proofs/inclusion", as_=login, params=params)
        assert r.status_code == 404, (login, params, r.text)
        assert r.json()["type"] == "urn:palermo:problem:not-found"
    r = api.get("/v1/audit/proofs/inclusion", as_="de.system", params={"index": 0})
    assert r.status_code == 404  # entry 0 is the seed's registration of it.central-authority


def test_inclusion_proof_requests_are_checked(api: Api, sync_engine: Engine) -> None:
    sequence(api.settings)
    size, _ = _checkpoint(api)
    for params in [
        {},
        {"index": 0, "event_id": "x"},
        {"index": size},
        {"index": 0, "tree_size": size + 1},
    ]:
        r = api.get("/v1/audit/proofs/inclusion", as_="oversight", params=params)
        assert r.status_code == 422, (params, r.text)
    r = api.get("/v1/audit/proofs/inclusion", as_="oversight", params={"event_id": "nope"})
    assert r.status_code == 404
    # Recorded but not yet sequenced: ask again after the next checkpoint.
    key = api.world.keys["de.bka"]
    from tests.integration.messaging_helpers import envelope

    mid = api.post("/v1/messages", as_="de.system", json=envelope(key)).json()["id"]
    r = api.get("/v1/audit/proofs/inclusion", as_="de.system", params={"message_id": mid})
    assert r.status_code == 409, r.text
    assert r.json()["type"] == "urn:palermo:problem:invalid-state"
    sequence(api.settings)
    r = api.get("/v1/audit/proofs/inclusion", as_="de.system", params={"message_id": mid})
    assert r.status_code == 200, r.text


def test_consistency_proofs_between_every_pair_of_kept_checkpoints(api: Api) -> None:
    scenario = run_scenario(api, messages=2)
    verifier = Ed25519Verifier.from_vkey(verifier_key(api.settings))
    kept = [open_checkpoint(note, verifier) for note in scenario.checkpoints]
    assert len({c.size for c in kept}) == len(kept)
    for old in kept:
        for new in kept:
            if old.size > new.size:
                continue
            r = api.get(
                "/v1/audit/proofs/consistency",
                as_="de.system",
                params={"old": old.size, "new": new.size},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert b64(body["old_root"]) == old.root_hash
            assert b64(body["new_root"]) == new.root_hash
            assert body["old_checkpoint"] is not None
            hashes = [b64(h) for h in body["hashes"]]
            verify_consistency(old.size, new.size, hashes, old.root_hash, new.root_hash)
    latest = kept[-1].size
    r = api.get("/v1/audit/proofs/consistency", as_="oversight", params={"old": 3})
    assert r.json()["new"] == latest
    for params in [{"old": 0}, {"old": 5, "new": 4}, {"old": 1, "new": latest + 1}, {}]:
        r = api.get("/v1/audit/proofs/consistency", as_="oversight", params=params)
        assert r.status_code == 422, (params, r.text)


# -- export and offline verification ------------------------------------------------------


def test_an_export_verifies_offline_against_every_checkpoint_kept(api: Api, tmp_path: Path) -> None:
    scenario = run_scenario(api)
    key = verifier_key(api.settings)
    bundle = export(api)
    header = json.loads(bundle.split(b"\n", 1)[0])
    assert header["size"] == _checkpoint(api)[0]
    verdict = verify(tmp_path, bundle, key, scenario.checkpoints)
    assert verdict.code == 0, verdict.out
    assert verdict.out.startswith(f"OK: log 'test.palermo' has {header['size']} entries")

    # The same through `palermo audit verify`, as an auditor would run it.
    path = tmp_path / "export.jsonl"
    path.write_bytes(bundle)
    held = tmp_path / "held.txt"
    held.write_text(scenario.checkpoints[2])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = palermo(["audit", "verify", "--key", key, "--checkpoint", str(held), str(path)])
    assert code == 0, out.getvalue()
    assert "consistent with earlier checkpoints of size" in out.getvalue()

    # An older published size, with consistency proof lines from the sizes the auditor held.
    sizes = [json.loads(n.split("\n")[1]) for n in scenario.checkpoints]
    older = export(api, size=sizes[-2], consistency_from=sizes[1:3])
    verdict = verify(tmp_path, older, key, scenario.checkpoints[:-1])
    assert verdict.code == 0, verdict.out
    assert "2 proofs checked" in verdict.out


def test_export_requests_are_checked(api: Api) -> None:
    assert api.get("/v1/audit/export", as_="oversight").status_code == 404  # nothing published
    sequence(api.settings)
    size, _ = _checkpoint(api)
    assert (
        api.get("/v1/audit/export", as_="oversight", params={"size": size - 1}).status_code == 404
    )
    r = api.get("/v1/audit/export", as_="oversight", params={"consistency_from": [size + 1]})
    assert r.status_code == 422
    assert r.json()["field"] == "consistency_from"
    assert api.get("/v1/audit/export", as_="it.officer").status_code == 403


def test_an_export_is_streamed_in_chunks(api: Api, sync_engine: Engine) -> None:
    _insert_events(sync_engine, 4500)
    sequence(api.settings, batch_size=5000)
    lines = 0
    chunks = 0
    with api.client.stream("GET", "/v1/audit/export", headers=api.headers("oversight")) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            chunks += 1
            lines += chunk.count(b"\n")
    assert lines == 1 + count_rows(sync_engine, "audit_events")
    assert chunks >= 3  # header, then one chunk per 2,000 entries
