"""Retention and crypto-shredding (P17; LED art. 4(1)(e), 5; docs/retention.md).

Every message and case gets a retention deadline: a plain message from the P17 ``retention``
obligation of its policy decision (``P5Y`` for personal data), else the node's default; a
case's messages follow the case, counted from its closure, refusal or withdrawal. At the
deadline ``erase_due`` (the beat task and ``palermo retention erase``) destroys every
wrapped copy of the content key and the ciphertext, writes one ``content:erased`` leaf per
item, and the content routes answer 410 Gone naming the erasure date. Nothing is erased
before its deadline; the audit log verifies end to end afterwards; a marker sent in a body,
and the stored ciphertext and wrapped keys, are nowhere in the data directory afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.engine import make_url

from broker.cases.scheduler import Erased, erase_due
from broker.cli import main
from broker.core import crypto
from broker.core.context import node_context
from broker.core.db import Database
from tests.conftest import Api
from tests.integration.audit_helpers import export, sequence, verifier_key, verify
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    FakeClock,
    case_config,
    fire,
    get_case,
    set_clocks,
    to_execution,
    upload,
    use_clock,
)
from tests.integration.web_helpers import Browser

MARKER = "MARKER-7f3c9a1e-retention-shred"
WHY = {"justification": "checking the retention of this item"}
OFFICER = "it.officer"


def erase_at(api: Api, now: dt.datetime) -> Erased:
    """One erasure pass at ``now`` (what the beat task and the CLI run)."""

    async def go() -> Erased:
        db = Database(api.settings.resolved_database_url, pool_size=1)
        try:
            return await erase_due(db, node_context(api.settings), case_config(api), now)
        finally:
            await db.dispose()

    return asyncio.run(go())


def send(api: Api, **over: Any) -> dict[str, Any]:
    key = api.world.keys["de.bka"]
    r = api.post("/v1/messages", as_="de.system", json=envelope(key, **over))
    assert r.status_code == 202, r.text
    relay(api.settings)
    r = api.get(f"/v1/messages/{r.json()['id']}", as_=OFFICER)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def stored(engine: Engine, message_ids: list[str]) -> list[bytes]:
    """The ciphertexts and every wrapped key of ``message_ids`` as stored."""
    blobs: list[bytes] = []
    with engine.connect() as c:
        for mid in message_ids:
            row = c.execute(
                text(
                    "SELECT ciphertext, key_for_node, key_for_sender, key_for_recipient "
                    "FROM messages WHERE id = :id"
                ),
                {"id": mid},
            ).one()
            blobs += [bytes(b) for b in row if b is not None]
    return blobs


def raw_files(api: Api) -> list[Path]:
    """Every file of the data directory, and the SQLite database with its WAL."""
    files = [p for p in Path(api.settings.data_dir).rglob("*") if p.is_file()]
    url = make_url(api.settings.resolved_database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        db = Path(url.database)
        files += [p for p in (db, Path(f"{db}-wal")) if p.exists()]
    return files


def assert_nowhere(api: Api, needles: list[bytes]) -> None:
    for path in raw_files(api):
        data = path.read_bytes()
        for needle in needles:
            # A 24-byte slice of a blob is as good as the blob: chance does not repeat it.
            probe = needle[:24] if len(needle) > 24 else needle
            assert probe not in data, f"{probe!r} is still in {path}"


def is_sqlite(api: Api) -> bool:
    return make_url(api.settings.resolved_database_url).get_backend_name() == "sqlite"


def found_somewhere(api: Api, needle: bytes) -> bool:
    return any(needle[:24] in path.read_bytes() for path in raw_files(api))


def erased_leaves(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'content:erased' ORDER BY id")
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def assert_log_verifies(api: Api, tmp_path: Path) -> None:
    sequence(api.settings)
    verdict = verify(tmp_path, export(api), verifier_key(api.settings))
    assert verdict.code == 0, verdict.out


def test_a_plain_message_gets_its_p17_deadline_or_the_default(api: Api) -> None:
    """P17: personal data carries the ``retention`` obligation P5Y; other data the node's
    default (PALERMO_RETENTION_MESSAGE_DAYS)."""
    personal = send(
        api, data_categories=["personal"], data_subjects=[{"ref": "p1", "category": "suspect"}]
    )
    accepted = at(personal["accepted_at"])
    until = at(personal["retention_until"])
    assert until.year == accepted.year + 5
    assert (until.month, until.day) == (accepted.month, accepted.day)
    assert personal["erased_at"] is None
    other = send(api)
    assert at(other["retention_until"]) == at(other["accepted_at"]) + dt.timedelta(
        days=api.settings.retention_message_days
    )


def test_a_plain_message_past_retention_is_shredded(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    message = send(api, body={"summary": MARKER})
    mid = message["id"]
    until = at(message["retention_until"])
    blobs = stored(sync_engine, [mid])
    assert len(blobs) >= 2  # the ciphertext and the node's wrapped key at least
    r = api.get(f"/v1/messages/{mid}/content", as_=OFFICER, params=WHY)
    assert r.status_code == 200
    assert MARKER in r.text

    if is_sqlite(api):  # the search below finds what is there: the stored ciphertext
        assert found_somewhere(api, blobs[0])
    # Before the deadline nothing is erased.
    before = erase_at(api, until - dt.timedelta(seconds=1))
    assert mid not in before.messages
    assert api.get(f"/v1/messages/{mid}/content", as_=OFFICER, params=WHY).status_code == 200
    assert stored(sync_engine, [mid]) == blobs

    done = erase_at(api, until)
    assert done.messages == [mid]
    assert stored(sync_engine, [mid]) == []
    seen = api.get(f"/v1/messages/{mid}", as_=OFFICER).json()
    assert seen["erased_at"] is not None
    r = api.get(f"/v1/messages/{mid}/content", as_=OFFICER, params=WHY)
    assert r.status_code == 410, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"] == "urn:palermo:problem:content-erased"
    assert problem["erased_at"] == seen["erased_at"]
    assert problem["erased_at"] in problem["detail"]
    leaves = [leaf for leaf in erased_leaves(sync_engine) if leaf.get("message_id") == mid]
    assert len(leaves) == 1
    assert leaves[0]["item"] == "message"
    # The web pages say so too: the message page, and a reading attempted anyway.
    browser = Browser(api.client)
    assert browser.sign_in(OFFICER).status_code == 303
    page = browser.get(f"/messages/{mid}")
    assert page.status_code == 200
    assert "The content was erased at the end of its retention on" in page.text
    assert f'action="/messages/{mid}/content"' not in page.text
    gone = browser.submit(f"/messages/{mid}", f"/messages/{mid}/content", WHY)
    assert gone.status_code == 410
    assert problem["erased_at"] in gone.text
    # A second pass erases nothing again.
    assert erase_at(api, until + dt.timedelta(days=1)).messages == []
    assert_log_verifies(api, tmp_path)
    assert_nowhere(api, [MARKER.encode(), *blobs])


def test_an_mla_case_past_retention_is_shredded_with_every_envelope_and_file(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    """An MLA case withdrawn, then past its retention (P17, counted from the withdrawal):
    its request, every event envelope (the transmitted request among them) and its evidence
    file are shredded, each with its leaf; the history remains."""
    clock = use_clock(api, FakeClock())
    set_clocks(api, {}, retention=dt.timedelta(days=365))
    case = to_execution(api, facts_summary=f"Funds moved, {MARKER}.")
    file_id = upload(api, case["id"], HANDLER, f"%PDF-1.7 {MARKER}".encode())
    withdrawn = fire(api, case["id"], "withdraw", DRAFTER, {"reason": "Discontinued."})
    assert withdrawn["case"]["state"] == "WITHDRAWN"
    seen = get_case(api, case["id"])
    until = at(seen["retention_until"])
    assert until == clock.now + dt.timedelta(days=365)
    with sync_engine.connect() as c:
        message_ids = [
            r[0]
            for r in c.execute(
                text(
                    "SELECT message_id FROM case_events WHERE case_id = :c "
                    "AND message_id IS NOT NULL ORDER BY seq"
                ),
                {"c": case["id"]},
            )
        ]
        request_blobs = [
            bytes(b)
            for b in c.execute(
                text("SELECT request_ciphertext, request_key FROM cases WHERE id = :c"),
                {"c": case["id"]},
            ).one()
        ]
        file_key = bytes(
            c.execute(
                text("SELECT key_for_node FROM evidence_files WHERE id = :f"), {"f": file_id}
            ).scalar_one()
        )
    assert len(message_ids) >= 5  # submit_for_vetting, transmit, acknowledge, ..., withdraw
    for mid in message_ids:
        r = api.get(f"/v1/messages/{mid}", as_=DRAFTER)
        assert at(r.json()["retention_until"]) == until, mid
    blobs = stored(sync_engine, message_ids)
    # The transmitted request is readable in the envelope before erasure: what must go.
    master = api.settings.master_key_bytes
    with sync_engine.connect() as c:
        key, box = c.execute(
            text("SELECT key_for_node, ciphertext FROM messages WHERE id = :m"),
            {"m": message_ids[1]},
        ).one()
    opened = orjson.loads(crypto.secretbox_decrypt(crypto.secretbox_decrypt(master, key), box))
    assert MARKER in base64.b64decode(opened["payload"]).decode()

    assert erase_at(api, until - dt.timedelta(seconds=1)) == Erased(messages=[], cases=[])
    assert stored(sync_engine, message_ids) == blobs

    done = erase_at(api, until)
    assert done.cases == [case["id"]]
    assert stored(sync_engine, message_ids) == []
    erased = get_case(api, case["id"])
    assert erased["state"] == "ERASED"
    assert erased["erased_at"] is not None
    when = erased["erased_at"]
    r = api.get(f"/v1/cases/{case['id']}/request", as_=DRAFTER, params=WHY)
    assert r.status_code == 410, r.text
    assert r.json()["erased_at"] == when
    r = api.get(f"/v1/cases/{case['id']}/evidence/{file_id}", as_=HANDLER, params=WHY)
    assert r.status_code == 410, r.text
    assert r.json()["type"] == "urn:palermo:problem:content-erased"
    for mid in message_ids:
        r = api.get(f"/v1/messages/{mid}/content", as_=DRAFTER, params=WHY)
        assert r.status_code == 410, (mid, r.text)
        assert r.json()["erased_at"] == when

    leaves = erased_leaves(sync_engine)
    named = {(leaf["item"], leaf.get("message_id") or leaf.get("evidence_id")) for leaf in leaves}
    assert ("case_request", None) in named
    assert ("evidence", file_id) in named
    assert {("message", mid) for mid in message_ids} <= named
    # The notices the case's clocks sent (its retention review, to both parties) go with it.
    with sync_engine.connect() as c:
        notices = (
            c.execute(
                text("SELECT id FROM messages WHERE case_id = :c AND type = 'notice'"),
                {"c": case["id"]},
            )
            .scalars()
            .all()
        )
    assert len(notices) == 2
    assert {("message", mid) for mid in notices} <= named
    assert len(leaves) == len(message_ids) + len(notices) + 2
    assert all(leaf["case_id"] == case["id"] for leaf in leaves)
    # Its purposes (free text) go with it: from the case, its terms and its events' details;
    # the events' leaves only ever held commitments, whose texts are gone too.
    with sync_engine.connect() as c:
        purpose, terms = c.execute(
            text("SELECT purpose, terms FROM cases WHERE id = :c"), {"c": case["id"]}
        ).one()
        details = c.execute(
            text("SELECT details FROM case_events WHERE case_id = :c"), {"c": case["id"]}
        ).all()
        kept = c.execute(
            text("SELECT count(*) FROM audit_texts WHERE case_id = :c"), {"c": case["id"]}
        ).scalar_one()
    assert purpose is None
    assert '"purpose' not in json.dumps(terms)
    assert all('"purpose' not in json.dumps(d[0]) for d in details)
    assert kept == 0
    with sync_engine.connect() as c:
        case_leaves = [
            json.loads(bytes(r[0]))
            for r in c.execute(
                text("SELECT leaf FROM audit_events WHERE message_id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": message_ids},
            )
        ]
    assert any("purpose_commitment" in leaf for leaf in case_leaves)
    assert not any("purpose" in leaf for leaf in case_leaves)
    assert_log_verifies(api, tmp_path)
    assert_nowhere(api, [MARKER.encode(), *blobs, *request_blobs, file_key])


def test_the_cli_erases_what_is_due(
    api: Api,
    sync_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``palermo retention erase`` runs the same pass as the beat task, at the node's time."""
    due, kept = send(api)["id"], send(api)["id"]
    with sync_engine.begin() as c:
        c.execute(
            text("UPDATE messages SET retention_until = :t WHERE id = :m"),
            {"t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "m": due},
        )
    for name, value in api.world.secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PALERMO_ENV", "test")
    monkeypatch.setenv("PALERMO_NODE_ID", api.settings.node_id)
    monkeypatch.setenv("PALERMO_DATA_DIR", str(api.settings.data_dir))
    monkeypatch.setenv("PALERMO_DATABASE_URL", api.settings.resolved_database_url)
    assert main(["retention", "erase"]) == 0
    out = capsys.readouterr().out
    assert f"erased message {due}" in out
    assert kept not in out
    assert "0 case(s), 1 message(s) erased" in out
    assert api.get(f"/v1/messages/{due}/content", as_=OFFICER, params=WHY).status_code == 410
    assert api.get(f"/v1/messages/{kept}/content", as_=OFFICER, params=WHY).status_code == 200


def test_messages_from_before_deadlines_get_the_default_and_are_erased_by_it(
    api: Api, sync_engine: Engine
) -> None:
    """A node upgraded past revision 0009 holds plain messages without a deadline: the
    erasure pass gives each the node's default from its acceptance (never "keep for ever"),
    and erases it once that has passed; a case's messages are left to their case."""
    old = send(api)
    mid = old["id"]
    with sync_engine.begin() as c:
        c.execute(text("UPDATE messages SET retention_until = NULL WHERE id = :m"), {"m": mid})
    accepted = at(old["accepted_at"])
    default = dt.timedelta(days=api.settings.retention_message_days)
    assert erase_at(api, accepted + default - dt.timedelta(seconds=1)).messages == []
    seen = api.get(f"/v1/messages/{mid}", as_=OFFICER).json()
    assert at(seen["retention_until"]) == accepted + default
    assert erase_at(api, accepted + default).messages == [mid]
