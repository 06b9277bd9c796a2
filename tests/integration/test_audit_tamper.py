"""Tampering with the log as a database superuser, caught offline by an auditor who kept
earlier checkpoints (issue 3 item 6; AUDIT.md "What the database can and cannot promise").

The attacker switches the append-only triggers off, rewrites ``audit_events``, and, holding
the node key as an operator does, throws the tree away, sequences the events again and signs
fresh checkpoints. The export then verifies on its own; only the checkpoints kept outside the
node give it away, at the first index that differs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import Api
from tests.integration.audit_helpers import (
    Scenario,
    disable_append_only,
    export,
    leaf_at,
    rebuild_log,
    run_scenario,
    sequence,
    verifier_key,
    verify,
)
from tests.integration.messaging_helpers import envelope


@pytest.fixture
def honest(api: Api, tmp_path: Path) -> Scenario:
    scenario = run_scenario(api, messages=3)
    verdict = verify(tmp_path, export(api), verifier_key(api.settings), scenario.checkpoints)
    assert verdict.code == 0, verdict.out
    return scenario


def _size(note: str) -> int:
    return int(note.split("\n")[1])


def _target(scenario: Scenario) -> int:
    """An index in the middle of the history: a checkpoint was kept right after it."""
    return _size(scenario.checkpoints[3]) - 1


def _tampered_leaf(leaf: bytes) -> bytes:
    fields = json.loads(leaf)
    fields["legal_basis"] = "a legal basis it never had"
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _check(api: Api, tmp_path: Path, scenario: Scenario, first_bad: int, why: str) -> None:
    bundle = export(api)
    key = verifier_key(api.settings)
    alone = verify(tmp_path, bundle, key)
    assert alone.code == 0, alone.out  # re-signed: consistent with itself
    caught = verify(tmp_path, bundle, key, scenario.checkpoints)
    assert caught.code == 1, caught.out
    assert caught.failed_at == first_bad, caught.out
    assert why in caught.out, caught.out


def test_an_edited_leaf_is_caught_at_its_index(
    api: Api, sync_engine: Engine, honest: Scenario, tmp_path: Path
) -> None:
    index = _target(honest)
    event, leaf = leaf_at(sync_engine, index)
    disable_append_only(sync_engine)
    with sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET leaf = :l WHERE id = :i"),
            {"l": _tampered_leaf(leaf), "i": event},
        )
    # Without re-signing, the node's own latest checkpoint already disagrees.
    plain = verify(tmp_path, export(api), verifier_key(api.settings))
    assert plain.code == 1
    assert "do not hash to the checkpoint's root" in plain.out
    rebuild_log(sync_engine, api.settings)
    _check(api, tmp_path, honest, index, "at least one of them was changed")


def test_a_deleted_leaf_is_caught_at_its_index(
    api: Api, sync_engine: Engine, honest: Scenario, tmp_path: Path
) -> None:
    index = _target(honest)
    event, _ = leaf_at(sync_engine, index)
    disable_append_only(sync_engine)
    with sync_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE idx = :i"), {"i": index})
    # Without re-sequencing, the export has a hole where the entry was.
    hole = verify(tmp_path, export(api), verifier_key(api.settings))
    assert hole.failed_at == index, hole.out
    assert "removed, inserted or reordered" in hole.out
    with sync_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM audit_unsequenced WHERE event_ref = :i"), {"i": event})
        conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": event})
    rebuild_log(sync_engine, api.settings)
    # Right away the log is one entry short of what the auditor holds, and the verifier
    # names the first index that differs: the one where the deleted entry was, now
    # holding its successor, against the earliest checkpoint kept after it...
    short = verify(tmp_path, export(api), verifier_key(api.settings), honest.checkpoints)
    assert short.code == 1, short.out
    assert short.failed_at == index, short.out
    assert "at least one of them was changed" in short.out
    # ...and once the node has logged more, the missing entry is still found where it was.
    r = api.post("/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"]))
    assert r.status_code == 202, r.text
    sequence(api.settings)
    _check(api, tmp_path, honest, index, "at least one of them was changed")


def test_two_swapped_leaves_are_caught_at_the_first(
    api: Api, sync_engine: Engine, honest: Scenario, tmp_path: Path
) -> None:
    first = _target(honest)
    last = _size(honest.checkpoints[-1]) - 2
    (event_a, leaf_a), (event_b, leaf_b) = leaf_at(sync_engine, first), leaf_at(sync_engine, last)
    disable_append_only(sync_engine)
    with sync_engine.begin() as conn:
        swap = text("UPDATE audit_events SET leaf = :l WHERE id = :i")
        conn.execute(swap, {"l": leaf_b, "i": event_a})
        conn.execute(swap, {"l": leaf_a, "i": event_b})
    rebuild_log(sync_engine, api.settings)
    _check(api, tmp_path, honest, first, "at least one of them was changed")


def test_a_truncated_tail_is_caught_where_it_was_cut(
    api: Api, sync_engine: Engine, honest: Scenario, tmp_path: Path
) -> None:
    cut = _target(honest) + 1
    with sync_engine.connect() as conn:
        doomed = [
            row[0]
            for row in conn.execute(
                text("SELECT event_ref FROM audit_log WHERE idx >= :c"), {"c": cut}
            )
        ]
    assert doomed
    disable_append_only(sync_engine)
    with sync_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
        for event in doomed:
            conn.execute(text("DELETE FROM audit_events WHERE id = :i"), {"i": event})
    assert rebuild_log(sync_engine, api.settings) == cut
    _check(api, tmp_path, honest, cut, "are gone")


def test_two_logs_served_to_two_clients_are_caught(
    api: Api, sync_engine: Engine, honest: Scenario, tmp_path: Path
) -> None:
    key = verifier_key(api.settings)
    # Client A fetches the log and keeps its checkpoint.
    seen_by_a = honest.checkpoints[-1]
    bundle_a = export(api)
    assert verify(tmp_path, bundle_a, key, [seen_by_a]).code == 0
    # The operator rewrites history and serves client B a log of the same size.
    index = _target(honest)
    event, leaf = leaf_at(sync_engine, index)
    disable_append_only(sync_engine)
    with sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET leaf = :l WHERE id = :i"),
            {"l": _tampered_leaf(leaf), "i": event},
        )
    assert rebuild_log(sync_engine, api.settings) == _size(seen_by_a)
    bundle_b = export(api)
    assert bundle_b != bundle_a
    alone = verify(tmp_path, bundle_b, key)
    assert alone.code == 0, alone.out  # B alone cannot tell
    # Once B holds A's checkpoint (gossip, a witness, an oversight body), it can.
    gossip = verify(tmp_path, bundle_b, key, [seen_by_a])
    assert gossip.code == 1
    assert gossip.failed_at == _size(seen_by_a) - 1
    assert "signed two different trees" in gossip.out
    # With every checkpoint A kept along the way, the first bad index is exact.
    exact = verify(tmp_path, bundle_b, key, honest.checkpoints)
    assert exact.failed_at == index, exact.out
