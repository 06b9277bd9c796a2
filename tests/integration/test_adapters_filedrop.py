"""File drop (adapter ``filedrop``): one node writes countersigned envelopes into a directory,
atomically; a disconnected node imports them (``palermo filedrop import``), verifies both
signatures, stores each once, and sets each file aside."""

from __future__ import annotations

import base64
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine

from broker.cli import main as palermo
from broker.core.crypto import Signer
from broker.core.db import make_sync_engine
from broker.core.settings import Settings
from broker.envelopes import dsse
from tests.conftest import Api, DatabaseFactory, World, count_rows, make_settings
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_delivery_helpers import deliver_once


def _use_filedrop(api: Api, participant: str, directory: Path, node_key: str | None = None) -> None:
    config: dict[str, str] = {"directory": str(directory)}
    if node_key:
        config["node_key"] = node_key
    r = api.request(
        "PUT",
        f"/v1/participants/{participant}/adapter",
        as_="it.admin",
        json={"adapter": "filedrop", "config": config},
    )
    assert r.status_code == 200, r.text


def _node_key(settings: Settings) -> str:
    return base64.b64encode(Signer(settings.node_signing_seed).public_key).decode()


@pytest.fixture
def other_node(
    db_factory: DatabaseFactory, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A second node (its own database copy and node key), as the CLI sees it."""
    url = db_factory.fresh()
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    settings = make_settings(
        url, tmp_path / "other", {**world.secrets, "PALERMO_NODE_SIGNING_KEY": new_key}
    )
    settings.data_dir.mkdir()
    for name, value in {
        "PALERMO_DATA_DIR": str(settings.data_dir),
        "PALERMO_DATABASE_URL": url,
        "PALERMO_MASTER_KEY": world.secrets["PALERMO_MASTER_KEY"],
        "PALERMO_NODE_SIGNING_KEY": new_key,
        "PALERMO_TOKEN_SECRET": world.secrets["PALERMO_TOKEN_SECRET"],
        "PALERMO_NODE_ID": "other.palermo.test",
        "PALERMO_ENV": "test",
    }.items():
        monkeypatch.setenv(name, value)
    yield settings
    db_factory.drop(url)


def test_envelopes_are_dropped_whole_and_imported_once_by_the_other_node(
    api: Api, other_node: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drop = tmp_path / "to-nl"
    drop.mkdir()
    _use_filedrop(api, "nl.fiu", drop)
    key = api.world.keys["de.bka"]
    ids = [
        api.post("/v1/messages", as_="de.system", json=envelope(key, recipient="nl.fiu")).json()[
            "id"
        ]
        for _ in range(3)
    ]
    assert deliver_once(api.settings).delivered == 3
    assert sorted(p.name for p in drop.iterdir()) == sorted(f"{i}.json" for i in ids)
    written = dsse.parse_envelope_json((drop / f"{ids[0]}.json").read_bytes())
    node = api.get("/v1/node").json()
    assert [s.keyid for s in written.signatures] == [key.kid, node["signing_key_id"]]
    dsse.verify_signature(written, 1, base64.b64decode(node["signing_public_key"]))
    status = api.get(f"/v1/messages/{ids[0]}", as_="de.system").json()
    assert status["status"] == "delivered"
    assert status["attempts"][0]["adapter"] == "filedrop"

    # The other node: de.bka lives behind the first node, reached by file drop both ways.
    back = tmp_path / "to-de"
    back.mkdir()
    assert (
        palermo(
            [
                "adapter",
                "set",
                "de.bka",
                "filedrop",
                "--config",
                orjson.dumps(
                    {"directory": str(back), "node_key": _node_key(api.settings)}
                ).decode(),
            ]
        )
        == 0
    )
    # What crosses the air gap: the drop directory, plus a partial copy and a stranger's file.
    carried = tmp_path / "carried"
    shutil.copytree(drop, carried)
    (carried / f".{ids[0]}.json.abcd.tmp").write_bytes(b'{"payloadType"')  # never imported
    forged = orjson.loads((carried / f"{ids[1]}.json").read_bytes())
    forged["signatures"][1]["sig"] = base64.b64encode(b"\x01" * 64).decode()
    (carried / "zz-forged.json").write_bytes(orjson.dumps(forged))
    capsys.readouterr()
    assert palermo(["filedrop", "import", str(carried)]) == 1  # one file was rejected
    out = capsys.readouterr().out
    assert "imported 3, already known 0, rejected 1" in out
    assert sorted(p.name for p in (carried / "processed").iterdir()) == sorted(
        f"{i}.json" for i in ids
    )
    assert (carried / "rejected" / "zz-forged.json.reason").read_text().startswith("bad-signature")
    assert (carried / f".{ids[0]}.json.abcd.tmp").exists()

    # Imported again (the same medium carried twice): known, stored once.
    for name in (f"{ids[0]}.json", f"{ids[1]}.json"):
        shutil.copy(carried / "processed" / name, carried / name)
    assert palermo(["filedrop", "import", str(carried)]) == 0
    assert "imported 0, already known 2, rejected 0" in capsys.readouterr().out
    engine = make_sync_engine(other_node.resolved_database_url)
    try:
        assert count_rows(engine, "messages") == 3
        assert relay(other_node) == 3
        assert count_rows(engine, "inbox_entries", "recipient_id = 'nl.fiu'") == 3
    finally:
        engine.dispose()


def test_a_missing_drop_directory_is_a_configuration_error(api: Api, tmp_path: Path) -> None:
    r = api.request(
        "PUT",
        "/v1/participants/nl.fiu/adapter",
        as_="it.admin",
        json={"adapter": "filedrop", "config": {"directory": str(tmp_path / "nowhere")}},
    )
    assert r.status_code == 422
    assert "does not exist" in r.json()["detail"]


def test_an_unwritable_drop_is_retried(api: Api, sync_engine: Engine, tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    _use_filedrop(api, "nl.fiu", drop)
    api.post(
        "/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"], recipient="nl.fiu")
    )
    drop.rmdir()  # the medium was unplugged
    assert deliver_once(api.settings).retry == 1
    assert count_rows(sync_engine, "outbox", "attempts = 1") == 1
