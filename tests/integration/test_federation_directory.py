"""Directory exchange between federated nodes (docs/api.md, "Federation"): this node's signed
directory, who may read it, and a fake peer node (its own node key, serving a hand-built
signed directory over HTTP) whose participants and keys this node registers, rotates,
revokes and suspends; and what a tampered directory does (nothing, and an alert leaf)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from adapters import httpsig
from broker.client import KeyFile
from broker.core import crypto
from broker.core.crypto import Signer
from broker.core.tasks import Runtime
from broker.envelopes import dsse
from broker.federation import tasks
from broker.federation.service import DIRECTORY_COMPONENTS, DIRECTORY_PATH, PAYLOAD_TYPE
from broker.oversight.service import canonical_json
from tests.conftest import Api, count_rows
from tests.integration.messaging_helpers import envelope

PEER_ID = "de.palermo"
SYNC = "/v1/federation/directory/sync"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _z(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass
class RemoteKey:
    """A key of a participant the fake peer hosts, as its directory lists it."""

    seed: bytes
    purpose: str = "signing"
    not_before: dt.datetime = field(default_factory=lambda: _now() - dt.timedelta(hours=1))
    not_after: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @property
    def public(self) -> bytes:
        if self.purpose == "signing":
            return Signer(self.seed).public_key
        return crypto.box_public_key(self.seed)

    @property
    def kid(self) -> str:
        return crypto.key_id(self.public)

    def keyfile(self, participant: str) -> KeyFile:
        return KeyFile(participant, self.kid, self.seed)

    def entry(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "purpose": self.purpose,
            "algorithm": "ed25519" if self.purpose == "signing" else "x25519",
            "public_key": base64.b64encode(self.public).decode(),
            "not_before": _z(self.not_before),
            "not_after": _z(self.not_after),
            "revoked_at": _z(self.revoked_at),
        }


def _participant(pid: str, *keys: RemoteKey, status: str = "active") -> dict[str, Any]:
    return {
        "id": pid,
        "kind": "police",
        "display_name": f"{pid} at the peer",
        "status": status,
        "keys": [k.entry() for k in keys],
    }


class FakePeer:
    """A peer node: its node key and an HTTP server answering GET /v1/federation/directory
    with whatever ``body`` holds, recording the request headers it got."""

    def __init__(self) -> None:
        self.key = Signer(secrets.token_bytes(32))
        self.body = b""
        self.requests: list[dict[str, str]] = []
        self.serial = int(_now().timestamp() * 1_000_000)
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                peer.requests.append({k.lower(): v for k, v in self.headers.items()})
                status = 200 if self.path == DIRECTORY_PATH else 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(peer.body)))
                self.end_headers()
                self.wfile.write(peer.body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def document(self, participants: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
        self.serial += 1000
        doc: dict[str, Any] = {
            "v": 1,
            "node_id": PEER_ID,
            "key_id": self.key.key_id,
            "serial": self.serial,
            "issued_at": _z(_now()),
            "participants": participants,
        }
        doc.update(over)
        return doc

    def publish(
        self, participants: list[dict[str, Any]], *, signer: Signer | None = None, **over: Any
    ) -> bytes:
        doc = self.document(participants, **over)
        signed = dsse.sign_envelope(
            canonical_json(doc), signer or self.key, payload_type=PAYLOAD_TYPE
        )
        self.body = signed.to_json()
        return self.body

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer(api: Api) -> Iterator[FakePeer]:
    fake = FakePeer()
    r = api.request(
        "PUT",
        f"/v1/federation/peers/{PEER_ID}",
        as_="it.admin",
        json={
            "url": fake.url,
            "node_key": base64.b64encode(fake.key.public_key).decode(),
            "jurisdictions": ["DE"],
        },
    )
    assert r.status_code == 200, r.text
    yield fake
    fake.close()


def _sync(api: Api, peer: str | None = PEER_ID) -> dict[str, Any]:
    r = api.post(SYNC, as_="it.admin", params={"peer": peer} if peer else {})
    assert r.status_code == 200, r.text
    [result] = r.json()["items"]
    assert isinstance(result, dict)
    return result


def _forward(api: Api, peer: FakePeer, key: KeyFile) -> httpx.Response:
    """An envelope signed by ``key`` for it.central-authority, forwarded by the peer."""
    signed = dsse.parse_envelope(envelope(key))
    body = dsse.add_signature(signed, peer.key).to_json()
    url = "http://testserver/v1/federation/envelopes"
    headers = {"Content-Type": "application/json"}
    headers.update(
        httpsig.sign(method="POST", url=url, headers=headers, body=body, signer=peer.key)
    )
    response: httpx.Response = api.client.post(
        "/v1/federation/envelopes", content=body, headers=headers
    )
    return response


def _leaves(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = :k ORDER BY created_at"), {"k": kind}
        ).scalars()
        return [json.loads(bytes(leaf)) for leaf in rows]


def _registry(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        participants = conn.execute(
            text("SELECT id, status, adapter FROM participants ORDER BY id")
        ).all()
        keys = conn.execute(
            text(
                "SELECT kid, participant_id, not_after, revoked_at FROM participant_keys"
                " ORDER BY kid"
            )
        ).all()
    return [tuple(r) for r in participants] + [tuple(r) for r in keys]


# --- publishing ---------------------------------------------------------------------------


def test_the_directory_is_signed_by_the_node_and_lists_its_own_participants(api: Api) -> None:
    behind = api.request(
        "PUT",
        "/v1/participants/de.bka/adapter",
        as_="it.admin",
        json={
            "adapter": "peer",
            "config": {
                "url": "https://palermo.de.example",
                "node_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            },
        },
    )
    assert behind.status_code == 200
    node = api.get("/v1/node").json()
    first = api.get(DIRECTORY_PATH, as_="it.admin")
    assert first.status_code == 200, first.text
    env = dsse.parse_envelope(first.json())
    assert env.payload_type == PAYLOAD_TYPE
    assert [s.keyid for s in env.signatures] == [node["signing_key_id"]]
    dsse.verify_signature(env, 0, base64.b64decode(node["signing_public_key"]))
    doc = json.loads(env.payload)
    assert env.payload == canonical_json(doc)
    assert (doc["v"], doc["node_id"], doc["key_id"]) == (
        1,
        node["node_id"],
        node["signing_key_id"],
    )
    ids = [p["id"] for p in doc["participants"]]
    assert "it.central-authority" in ids
    assert "de.bka" not in ids  # hosted by a peer: nodes do not relay
    nl = next(p for p in doc["participants"] if p["id"] == "nl.fiu")
    assert api.world.keys["nl.fiu"].kid in {k["kid"] for k in nl["keys"]}
    assert all("private" not in json.dumps(k) for k in nl["keys"])
    second = json.loads(
        dsse.parse_envelope(api.get(DIRECTORY_PATH, as_="oversight").json()).payload
    )
    assert second["serial"] > doc["serial"]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("it.admin", 200),
        ("oversight", 200),
        ("it.officer", 403),
        ("it.supervisor", 403),
        ("de.system", 403),
        ("anonymous", 401),
        ("peer", 200),
        ("stranger", 401),
    ],
)
def test_who_may_read_the_directory(api: Api, peer: FakePeer, who: str, expected: int) -> None:
    url = "http://testserver" + DIRECTORY_PATH
    if who in ("peer", "stranger"):
        signer = peer.key if who == "peer" else Signer(secrets.token_bytes(32))
        headers = httpsig.sign(
            method="GET",
            url=url,
            headers={},
            body=b"",
            signer=signer,
            components=DIRECTORY_COMPONENTS,
        )
        r = api.client.get(DIRECTORY_PATH, headers=headers)
    else:
        r = api.get(DIRECTORY_PATH, as_=None if who == "anonymous" else who)
    assert r.status_code == expected, r.text
    if expected == 200:
        assert dsse.parse_envelope(r.json()).payload_type == PAYLOAD_TYPE
    else:
        assert r.headers["content-type"].startswith("application/problem+json")


# --- applying a peer's directory ----------------------------------------------------------


def test_a_directory_registers_the_peers_participants_and_their_keys(
    api: Api, peer: FakePeer, sync_engine: Engine
) -> None:
    signing, encryption = (
        RemoteKey(secrets.token_bytes(32)),
        RemoteKey(secrets.token_bytes(32), purpose="encryption"),
    )
    peer.publish([_participant("de.lka", signing, encryption)])
    result = _sync(api)
    assert result["outcome"] == "applied", result
    assert result["changes"]["registered"] == ["de.lka"]
    assert sorted(result["changes"]["keys_added"]) == sorted([signing.kid, encryption.kid])
    # The request to the peer was signed by this node's key (RFC 9421).
    node = api.get("/v1/node").json()
    [request] = peer.requests
    verified = httpsig.verify(
        method="GET",
        url=peer.url + DIRECTORY_PATH,
        headers=request,
        body=b"",
        key_for=lambda kid: (
            base64.b64decode(node["signing_public_key"]) if kid == node["signing_key_id"] else None
        ),
        required=DIRECTORY_COMPONENTS,
    )
    assert verified.keyid == node["signing_key_id"]
    adapter = api.get("/v1/participants/de.lka/adapter", as_="it.admin").json()
    assert adapter["adapter"] == "peer"
    assert adapter["config"]["node_key"] == base64.b64encode(peer.key.public_key).decode()
    [leaf] = _leaves(sync_engine, "federation:directory-applied")
    assert leaf["peer"] == PEER_ID
    assert leaf["changes"]["registered"] == ["de.lka"]
    # The key it brought verifies a message the peer forwards from de.lka.
    r = _forward(api, peer, signing.keyfile("de.lka"))
    assert r.status_code == 202, r.text
    # The same directory again changes nothing and writes no leaf.
    assert _sync(api)["outcome"] == "unchanged"
    assert len(_leaves(sync_engine, "federation:directory-applied")) == 1
    peers = api.get("/v1/federation/peers", as_="oversight").json()["items"]
    assert peers[0]["directory_serial"] == peer.serial
    assert peers[0]["failures"] == 0


def test_a_rotation_on_the_peer_is_applied_here(
    api: Api, peer: FakePeer, sync_engine: Engine
) -> None:
    old = RemoteKey(secrets.token_bytes(32))
    peer.publish([_participant("de.lka", old)])
    assert _sync(api)["outcome"] == "applied"
    # Rotated on the peer: a new key, the old one's validity ended (here: already over).
    new = RemoteKey(secrets.token_bytes(32))
    old.not_after = _now() - dt.timedelta(seconds=5)
    peer.publish([_participant("de.lka", old, new)])
    result = _sync(api)
    assert result["outcome"] == "applied", result
    assert result["changes"]["keys_added"] == [new.kid]
    assert result["changes"]["keys_ended"] == [old.kid]
    assert _forward(api, peer, new.keyfile("de.lka")).status_code == 202
    refused = _forward(api, peer, old.keyfile("de.lka"))
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == "urn:palermo:problem:expired-key"
    leaf = _leaves(sync_engine, "federation:directory-applied")[-1]
    assert leaf["changes"]["keys_ended"] == [old.kid]


def test_a_revocation_on_the_peer_is_applied_and_the_key_then_refused(
    api: Api, peer: FakePeer, sync_engine: Engine
) -> None:
    key, other = RemoteKey(secrets.token_bytes(32)), RemoteKey(secrets.token_bytes(32))
    peer.publish([_participant("de.lka", key), _participant("de.zoll", other)])
    assert _sync(api)["outcome"] == "applied"
    assert _forward(api, peer, key.keyfile("de.lka")).status_code == 202
    key.revoked_at = _now() - dt.timedelta(seconds=1)
    peer.publish([_participant("de.lka", key)])  # and de.zoll is no longer listed
    result = _sync(api)
    assert result["outcome"] == "applied", result
    assert sorted(result["changes"]["keys_revoked"]) == sorted([key.kid, other.kid])
    assert result["changes"]["suspended"] == ["de.zoll"]
    refused = _forward(api, peer, key.keyfile("de.lka"))
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == "urn:palermo:problem:revoked-key"
    assert api.get("/v1/participants/de.zoll", as_="it.admin").json()["status"] == "suspended"
    leaf = _leaves(sync_engine, "federation:directory-applied")[-1]
    assert leaf["changes"]["suspended"] == ["de.zoll"]
    # A later directory that lists the key unrevoked does not undo the revocation.
    key.revoked_at = None
    peer.publish([_participant("de.lka", key)])
    _sync(api)
    assert _forward(api, peer, key.keyfile("de.lka")).status_code == 400


TAMPERED = [
    "bad-signature",
    "wrong-node",
    "older-serial",
    "other-peer-key",
    "local-participant",
    "other-peers-participant",
    "stale",
    "other-jurisdiction",
]


@pytest.mark.parametrize("case", TAMPERED)
def test_a_directory_that_fails_to_verify_changes_nothing_and_alerts(
    api: Api, peer: FakePeer, sync_engine: Engine, case: str
) -> None:
    key = RemoteKey(secrets.token_bytes(32))
    peer.publish([_participant("de.lka", key)])
    assert _sync(api)["outcome"] == "applied"
    second = FakePeer()  # another configured peer, hosting de.bund
    try:
        r = api.request(
            "PUT",
            "/v1/federation/peers/fr.palermo",
            as_="it.admin",
            json={
                "url": second.url,
                "node_key": base64.b64encode(second.key.public_key).decode(),
                "jurisdictions": ["FR"],
            },
        )
        assert r.status_code == 200, r.text
        second.publish(
            [_participant("fr.gendarmerie", RemoteKey(secrets.token_bytes(32)))],
            node_id="fr.palermo",
            key_id=second.key.key_id,
        )
        assert _sync(api, "fr.palermo")["outcome"] == "applied"
        # The peer may host participants of DE, FR and IT here: what refuses a listed
        # it.* or fr.* participant below is that it is not behind this peer's node key.
        widened = api.request(
            "PUT",
            f"/v1/federation/peers/{PEER_ID}",
            as_="it.admin",
            json={
                "url": peer.url,
                "node_key": base64.b64encode(peer.key.public_key).decode(),
                "jurisdictions": ["DE", "FR", "IT"],
            },
        )
        assert widened.json()["jurisdictions"] == ["DE", "FR", "IT"]
        before = _registry(sync_engine)
        newer = [_participant("de.lka", key, RemoteKey(secrets.token_bytes(32)))]
        stranger = Signer(secrets.token_bytes(32))
        if case == "bad-signature":
            body = json.loads(peer.publish(newer))
            body["signatures"][0]["sig"] = base64.b64encode(stranger.sign(b"x")).decode()
            peer.body = json.dumps(body).encode()
        elif case == "wrong-node":
            peer.publish(newer, node_id="fr.palermo")
        elif case == "older-serial":
            peer.publish(newer, serial=peer.serial - 5000)
        elif case == "other-peer-key":
            # Signed by the other configured peer's key, served at this peer's URL.
            peer.publish(newer, signer=second.key, key_id=second.key.key_id)
        elif case == "local-participant":
            peer.publish(
                [*newer, _participant("it.central-authority", RemoteKey(secrets.token_bytes(32)))]
            )
        elif case == "other-peers-participant":
            peer.publish(
                [*newer, _participant("fr.gendarmerie", RemoteKey(secrets.token_bytes(32)))]
            )
        elif case == "other-jurisdiction":
            peer.publish([*newer, _participant("us.fbi", RemoteKey(secrets.token_bytes(32)))])
        else:
            peer.publish(newer, issued_at=_z(_now() - dt.timedelta(hours=3)))
        result = _sync(api)
        assert result["outcome"] == "refused", result
        assert _registry(sync_engine) == before
        [leaf] = _leaves(sync_engine, "federation:directory-refused")
        assert leaf["peer"] == PEER_ID
        reason = {
            "bad-signature": "bad-signature",
            "wrong-node": "wrong-node",
            "older-serial": "replayed",
            "other-peer-key": "bad-signature",
            "local-participant": "not-behind-peer",
            "other-peers-participant": "not-behind-peer",
            "stale": "stale",
            "other-jurisdiction": "jurisdiction",
        }[case]
        assert leaf["reason"] == reason, leaf
        peers = {
            p["node_id"]: p for p in api.get("/v1/federation/peers", as_="it.admin").json()["items"]
        }
        assert peers[PEER_ID]["failures"] == 1
        assert peers["fr.palermo"]["failures"] == 0
        metrics = api.client.get("/metrics").text
        assert f'palermo_federation_directory_refused_total{{peer="{PEER_ID}"}} 1.0' in metrics
        assert 'palermo_federation_directory_refused_total{peer="fr.palermo"} 0.0' in metrics
    finally:
        second.close()


def test_the_scheduled_task_syncs_every_peer(
    api: Api, peer: FakePeer, sync_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = RemoteKey(secrets.token_bytes(32))
    peer.publish([_participant("de.lka", key)])
    runtime = Runtime(api.settings)
    monkeypatch.setattr(tasks, "runtime", runtime)
    monkeypatch.setattr(tasks, "settings", api.settings)
    try:
        assert tasks.sync_directories() == 1
        assert count_rows(sync_engine, "participants", "id = 'de.lka'") == 1
        assert tasks.sync_directories() == 0  # the same directory: nothing to change
    finally:
        runtime.close()
    assert len(_leaves(sync_engine, "federation:directory-applied")) == 1


def test_peer_configuration_and_sync_are_for_administrators(api: Api, peer: FakePeer) -> None:
    good = {
        "url": "https://palermo.fr.example",
        "node_key": base64.b64encode(b"k" * 32).decode(),
        "jurisdictions": ["FR"],
    }
    for who in ("it.officer", "oversight", "de.system"):
        r = api.request("PUT", "/v1/federation/peers/fr.palermo", as_=who, json=good)
        assert r.status_code == 403, (who, r.text)
        assert api.post(SYNC, as_=who).status_code == 403
    assert api.get("/v1/federation/peers", as_="it.officer").status_code == 403
    assert api.post(SYNC).status_code == 401
    for body, status, where in [
        ({**good, "jurisdictions": []}, 422, "jurisdictions"),
        ({**good, "jurisdictions": ["FRA"]}, 422, "jurisdictions"),
        ({**good, "node_key": "AAAA"}, 422, "node_key"),
        ({**good, "url": "http://palermo.fr.example"}, 422, "https"),
        ({**good, "url": "https://169.254.169.254"}, 422, "link-local"),
        ({**good, "url": "https://metadata.google.internal"}, 422, "metadata"),
        ({**good, "node_key": base64.b64encode(peer.key.public_key).decode()}, 409, "already"),
    ]:
        r = api.request("PUT", "/v1/federation/peers/fr.palermo", as_="it.admin", json=body)
        assert r.status_code == status, r.text
        assert where in r.json()["detail"]
    r = api.request("PUT", "/v1/federation/peers/Not A Node", as_="it.admin", json=good)
    assert r.status_code == 422
    r = api.post(SYNC, as_="it.admin", params={"peer": "xx.unknown"})
    assert r.status_code == 404
    assert r.json()["type"] == "urn:palermo:problem:not-found"


def test_the_cli_registers_a_peer_and_syncs_its_directory(
    api: Api,
    peer: FakePeer,
    sync_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from broker.cli import main

    for name in list(os.environ):
        if name.startswith("PALERMO_"):
            monkeypatch.delenv(name)
    for name, value in api.world.secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PALERMO_ENV", "test")
    monkeypatch.setenv("PALERMO_DATABASE_URL", api.settings.database_url)
    monkeypatch.setenv("PALERMO_DATA_DIR", str(api.settings.data_dir))
    monkeypatch.setenv("PALERMO_NODE_ID", api.settings.node_id)
    key = RemoteKey(secrets.token_bytes(32))
    peer.publish([_participant("de.lka", key)])
    assert main(["federation", "sync-directory", "--peer", PEER_ID]) == 0
    out = capsys.readouterr().out
    assert f"{PEER_ID}: applied" in out, out
    assert "registered 1" in out, out
    assert count_rows(sync_engine, "participant_keys", "kid = :k", k=key.kid) == 1
    other = base64.b64encode(Signer(secrets.token_bytes(32)).public_key).decode()
    code = main(
        [
            "federation",
            "peer-set",
            "fr.palermo",
            "--url",
            "https://palermo.fr.example",
            "--jurisdiction",
            "FR",
            "--node-key",
            other,
        ]
    )
    assert code == 0
    assert "peer fr.palermo" in capsys.readouterr().out
    assert main(["federation", "sync-directory", "--peer", "xx.unknown"]) == 2
    assert "no peer node xx.unknown" in capsys.readouterr().err
