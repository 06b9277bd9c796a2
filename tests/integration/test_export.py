"""A participant exports its own messages and opens them with its own private key: the
content key sealed at acceptance to its X25519 encryption key (``key_for_sender`` or
``key_for_recipient``) is real and is the only key used; the node's master key plays no part
on the client side. Each page is one logged consultation (LED art. 25)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from broker.cli import main
from broker.client import EncryptionKeyFile, ExportError, PalermoClient, open_exported
from broker.core import crypto
from tests.conftest import Api
from tests.integration.audit_helpers import kept_text
from tests.integration.messaging_helpers import envelope, relay
from tests.integration.test_retention import erase_at

WHY = "keeping our own record of the exchanges"


def _self_held_encryption_key(api: Api, participant: str) -> EncryptionKeyFile:
    """A key pair made here, whose public half the node seals to from now on."""
    private, public = crypto.generate_box_key()
    r = api.post(
        f"/v1/participants/{participant}/keys/rotate",
        as_="it.admin",
        json={
            "purpose": "encryption",
            "public_key": base64.b64encode(public).decode(),
            "grace_seconds": 0,
        },
    )
    assert r.status_code == 201, r.text
    return EncryptionKeyFile(participant, r.json()["kid"], private)


def _send(api: Api, body: dict[str, Any]) -> str:
    r = api.post(
        "/v1/messages", as_="de.system", json=envelope(api.world.keys["de.bka"], body=body)
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _consultations(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'content:consulted' ORDER BY id")
        ).all()
    return [orjson.loads(bytes(r[0])) for r in rows]


def _client(api: Api) -> PalermoClient:
    client = PalermoClient("http://testserver", transport=api.client._transport)
    client.login_client("de.system", api.world.client_secrets["de.system"])
    return client


def test_messages_open_with_the_participants_own_key(api: Api, sync_engine: Engine) -> None:
    before = _send(api, {"summary": "sealed to the custodial key"})
    key = _self_held_encryption_key(api, "de.bka")
    sent = [_send(api, {"summary": f"vessel {n}"}) for n in range(3)]
    relay(api.settings)

    with _client(api) as client:
        items = list(client.export(WHY, page_size=2))
    assert [i["id"] for i in items] == sorted([before, *sent])
    opened = {i["id"]: open_exported(key, i) for i in items if i["id"] != before}
    for mid, env in opened.items():
        payload = orjson.loads(base64.b64decode(env["payload"]))
        assert payload["id"] == mid
        assert payload["body"]["summary"].startswith("vessel")
        assert len(env["signatures"]) == 2  # the sender's and the node's countersignature
    older = next(i for i in items if i["id"] == before)
    with pytest.raises(ExportError, match="sealed to key"):
        open_exported(key, older)  # sealed to the key of its day, which this file is not
    stranger = EncryptionKeyFile("de.bka", key.kid, crypto.generate_box_key()[0])
    with pytest.raises(ExportError, match="does not open"):
        open_exported(stranger, items[-1])

    # Two pages, two consultations, each naming what it held.
    leaves = [x for x in _consultations(sync_engine) if x.get("object") == "export"]
    assert [x["count"] for x in leaves] == [2, 2]
    first_page = sorted([before, *sent])[:2]
    assert leaves[0]["ids_sha256"] == hashlib.sha256("\n".join(first_page).encode()).hexdigest()
    assert kept_text(sync_engine, leaves[0], "justification") == WHY


def test_an_export_needs_a_justification_and_leaves_out_what_is_not_theirs(
    api: Api, sync_engine: Engine
) -> None:
    _send(api, {"summary": "to Italy"})
    r = api.get("/v1/messages/export", as_="de.system")
    assert r.status_code == 422
    assert r.json()["type"].endswith("justification-required")
    assert [x for x in _consultations(sync_engine) if x.get("object") == "export"] == []
    # Not yet delivered: the recipient's export does not hold it.
    r = api.get("/v1/messages/export", as_="it.officer", params={"justification": WHY})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
    assert r.headers["cache-control"] == "no-store"
    relay(api.settings)
    items = api.get("/v1/messages/export", as_="it.officer", params={"justification": WHY}).json()
    assert [i["role"] for i in items["items"]] == ["recipient"]
    assert api.get("/v1/messages/export", as_="oversight").status_code == 403


def test_the_cli_writes_what_opens_and_reports_the_rest(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _send(api, {"summary": "before the key"})
    key = _self_held_encryption_key(api, "de.bka")
    mid = _send(api, {"summary": "after the key"})
    key_file = tmp_path / "de.bka.encryption.json"
    key.save(key_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    monkeypatch.setattr(
        "broker.cli.client_cmds.PalermoClient",
        lambda url: PalermoClient(url, transport=api.client._transport),
    )
    monkeypatch.setenv("PALERMO_CLIENT_SECRET", api.world.client_secrets["de.system"])
    out = tmp_path / "export.jsonl"
    args = ["export", "--url", "http://testserver", "--client-id", "de.system"]
    args += ["--encryption-key", str(key_file), "--justification", WHY, "--out", str(out)]
    assert main(args) == 1  # one message was sealed to the earlier key
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == [mid]
    assert lines[0]["role"] == "sender"
    assert "exported 1 messages, 1 not opened" in capsys.readouterr().err


def test_a_message_without_the_partys_copy_gets_one_in_the_next_pass(
    api: Api, sync_engine: Engine
) -> None:
    """A message accepted while its sender had no encryption key has no sealed copy for it;
    the erasure pass seals the content key to the key the sender holds now."""
    key = _self_held_encryption_key(api, "de.bka")
    mid = _send(api, {"summary": "vessel without a copy"})
    with sync_engine.begin() as c:
        c.execute(
            text("UPDATE messages SET key_for_sender = NULL, sender_enc_kid = NULL WHERE id = :m"),
            {"m": mid},
        )
    with _client(api) as client:
        (item,) = [i for i in client.export(WHY) if i["id"] == mid]
    with pytest.raises(ExportError):
        open_exported(key, item)
    assert erase_at(api, dt.datetime.now(dt.UTC)).sealed == 1
    with _client(api) as client:
        (item,) = [i for i in client.export(WHY) if i["id"] == mid]
    env = open_exported(key, item)
    assert orjson.loads(base64.b64decode(env["payload"]))["id"] == mid
