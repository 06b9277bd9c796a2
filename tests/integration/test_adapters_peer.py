"""Federation (adapter ``peer``): two real nodes, each an API and a Celery worker process with
its own database and node key, exchange messages both ways; and what the federation endpoint
refuses."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from adapters import httpsig
from broker.client import sign
from broker.core.crypto import Signer
from broker.core.db import make_sync_engine
from broker.core.settings import Settings
from broker.core.tokens import issue_token
from broker.envelopes import dsse
from broker.worker import make_celery
from tests.conftest import (
    ACCOUNTS,
    Api,
    DatabaseFactory,
    World,
    count_rows,
    make_settings,
    need_service,
)
from tests.integration.messaging_helpers import envelope, payload, relay
from tests.integration.test_case_helpers import open_case
from tests.support.processes import free_port

FEDERATION = "/v1/federation/envelopes"


# --- the endpoint, in process ------------------------------------------------------------


@pytest.fixture
def peer_key(api: Api) -> Signer:
    """A peer node's key, registered as the node hosting de.bka."""
    key = Signer(secrets.token_bytes(32))
    r = api.request(
        "PUT",
        "/v1/participants/de.bka/adapter",
        as_="it.admin",
        json={
            "adapter": "peer",
            "config": {
                "url": "https://palermo.de.example",
                "node_key": base64.b64encode(key.public_key).decode(),
            },
        },
    )
    assert r.status_code == 200, r.text
    return key


def _forwarded(api: Api, node_key: Signer, **over: Any) -> bytes:
    signed = dsse.parse_envelope(envelope(api.world.keys["de.bka"], **over))
    return dsse.add_signature(signed, node_key).to_json()


def _post(api: Api, body: bytes, signer: Signer | None, **headers: str) -> httpx.Response:
    url = "http://testserver" + FEDERATION
    all_headers = {"Content-Type": "application/json", **headers}
    if signer is not None:
        all_headers.update(
            httpsig.sign(method="POST", url=url, headers=all_headers, body=body, signer=signer)
        )
    response: httpx.Response = api.client.post(FEDERATION, content=body, headers=all_headers)
    return response


def test_a_forwarded_envelope_is_accepted_once_and_delivered(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    body = _forwarded(api, peer_key)
    first = _post(api, body, peer_key)
    assert first.status_code == 202, first.text
    answer = first.json()
    # This node's countersignature follows the sender's; the forwarder's is not kept.
    sigs = answer["envelope"]["signatures"]
    assert [s["keyid"] for s in sigs] == [
        api.world.keys["de.bka"].kid,
        api.get("/v1/node").json()["signing_key_id"],
    ]
    again = _post(api, body, peer_key)
    assert again.status_code == 200
    assert again.json() == answer
    assert count_rows(sync_engine, "messages") == 1
    assert relay(api.settings) == 1
    [item] = api.get("/v1/inbox", as_="it.officer").json()["items"]
    assert item["message"]["id"] == answer["id"]
    with sync_engine.connect() as conn:
        leaf = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'message:accepted'")
        ).scalar_one()
    assert json.loads(bytes(leaf))["actor"]["account"] == f"peer:{peer_key.key_id}"


def test_an_old_forwarded_envelope_is_accepted_within_the_federation_window(
    api: Api, peer_key: Signer
) -> None:
    """A delivery retried for an hour still lands: the origin node checked freshness."""
    import datetime as dt

    created = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    r = _post(api, _forwarded(api, peer_key, created_at=created), peer_key)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("case", ["unsigned", "unknown-node", "other-countersigner", "token"])
def test_requests_not_signed_by_the_forwarding_peer_are_refused(
    api: Api, peer_key: Signer, sync_engine: Engine, case: str
) -> None:
    stranger = Signer(secrets.token_bytes(32))
    if case == "unsigned":
        r = _post(api, _forwarded(api, peer_key), None)
        expected = (401, "unauthenticated")
    elif case == "unknown-node":
        r = _post(api, _forwarded(api, stranger), stranger)
        expected = (401, "unauthenticated")
    elif case == "other-countersigner":
        # A known peer signs the request, but another key countersigned the envelope.
        r = _post(api, _forwarded(api, stranger), peer_key)
        expected = (400, "bad-signature")
    else:
        r = _post(
            api, _forwarded(api, peer_key), None, Authorization=f"Bearer {api.token('it.admin')}"
        )
        expected = (403, "forbidden")
    assert (r.status_code, r.json()["type"]) == (
        expected[0],
        f"urn:palermo:problem:{expected[1]}",
    ), r.text
    assert count_rows(sync_engine, "messages") == 0


def test_a_sender_not_behind_the_forwarding_node_is_refused(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    nl = api.world.keys["nl.fiu"]  # nl.fiu is hosted here, not behind the peer
    body = dsse.add_signature(
        dsse.parse_envelope(sign(nl, payload(nl, recipient="it.central-authority"))), peer_key
    ).to_json()
    r = _post(api, body, peer_key)
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "urn:palermo:problem:sender-mismatch"
    assert count_rows(sync_engine, "messages") == 0


def test_a_forged_sender_signature_is_refused(api: Api, peer_key: Signer) -> None:
    env = envelope(api.world.keys["de.bka"])
    env["signatures"][0]["sig"] = base64.b64encode(b"\x00" * 64).decode()
    body = dsse.add_signature(dsse.parse_envelope(env), peer_key).to_json()
    r = _post(api, body, peer_key)
    assert r.status_code == 400
    assert r.json()["type"] == "urn:palermo:problem:bad-signature"


def test_a_case_event_of_a_case_held_by_the_peer_comes_through_federation(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    """Case events only through cases (issue 14 item 5): the peer's case service accepted
    it for a party of a case the peer holds; this node stores and delivers it."""
    case_id = str(uuid.uuid4())
    body = _forwarded(api, peer_key, type="mla.event", case_id=case_id, body={"event": "x"})
    r = _post(api, body, peer_key)
    assert r.status_code == 202, r.text
    assert count_rows(sync_engine, "messages", "case_id = :c", c=case_id) == 1
    assert relay(api.settings) == 1
    [item] = api.get("/v1/inbox", as_="it.officer").json()["items"]
    assert item["message"]["case_id"] == case_id


def test_a_forwarded_event_into_a_case_held_here_by_another_pair_is_refused(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    """de.bka, behind the peer, is no party of the Italy-US case this node holds."""
    case = open_case(api)
    before = count_rows(sync_engine, "messages")
    body = _forwarded(api, peer_key, type="mla.event", case_id=case["id"], body={"event": "refuse"})
    r = _post(api, body, peer_key)
    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["type"] == "urn:palermo:problem:forbidden", problem
    assert problem["field"] == "payload.case_id", problem
    assert "it.central-authority and us.central-authority" in problem["detail"], problem
    assert count_rows(sync_engine, "messages") == before
    assert count_rows(sync_engine, "outbox") == 0


def test_a_forwarded_case_event_without_its_case_is_refused(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    r = _post(api, _forwarded(api, peer_key, type="mla.event"), peer_key)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:palermo:problem:case-event-outside-case", r.text
    assert count_rows(sync_engine, "messages") == 0


def test_the_peer_configuration_is_checked(api: Api) -> None:
    for config, why in [
        ({"url": "https://x.example"}, "node_key"),
        ({"url": "https://x.example", "node_key": "AAAA"}, "32-byte"),
        ({"node_key": base64.b64encode(b"k" * 32).decode()}, "url is required"),
    ]:
        r = api.request(
            "PUT",
            "/v1/participants/nl.fiu/adapter",
            as_="it.admin",
            json={"adapter": "peer", "config": config},
        )
        assert r.status_code == 422
        assert why in r.json()["detail"]


# --- two real nodes ----------------------------------------------------------------------


@dataclass
class Node:
    name: str
    settings: Settings
    url: str
    queue: str
    broker: str
    world: World
    procs: list[subprocess.Popen[bytes]]
    log: Path

    @property
    def node_key(self) -> str:
        return base64.b64encode(Signer(self.settings.node_signing_seed).public_key).decode()

    def token(self, login: str) -> str:
        pid, kind, roles = ACCOUNTS[login]
        token, _ = issue_token(
            secret=self.settings.token_secret_bytes,
            issuer=self.settings.resolved_issuer,
            audience=self.settings.token_audience,
            subject=self.world.account_ids[login],
            participant_id=pid,
            roles=frozenset(roles),
            kind=kind.value,
            ttl_seconds=600,
        )
        return token

    def call(self, method: str, path: str, login: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(login)}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def relay(self) -> None:
        app = make_celery(self.settings.model_copy(update={"celery_broker_url": self.broker}))
        app.send_task("palermo.delivery.relay", queue=self.queue)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _env(s: Settings, broker: str) -> dict[str, str]:
    assert s.master_key is not None
    assert s.node_signing_key is not None
    assert s.token_secret is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")}
    env.update(
        PALERMO_DATA_DIR=str(s.data_dir),
        PALERMO_DATABASE_URL=s.resolved_database_url,
        PALERMO_CELERY_BROKER_URL=broker,
        PALERMO_CELERY_RESULT_BACKEND=f"db+sqlite:///{s.data_dir / 'results.db'}",
        PALERMO_MASTER_KEY=s.master_key.get_secret_value(),
        PALERMO_NODE_SIGNING_KEY=s.node_signing_key.get_secret_value(),
        PALERMO_TOKEN_SECRET=s.token_secret.get_secret_value(),
        PALERMO_NODE_ID=s.node_id,
        PALERMO_PUBLIC_URL=s.public_url,
        PALERMO_ENV="test",
        PALERMO_LOG_LEVEL="WARNING",
        # Both nodes are on this machine: a peer on loopback needs the setting.
        PALERMO_WEBHOOK_ALLOW_PRIVATE="true",
    )
    return env


@pytest.fixture
def two_nodes(
    settings: Settings, db_factory: DatabaseFactory, world: World, tmp_path: Path
) -> Iterator[tuple[Node, Node]]:
    need_service("redis", "127.0.0.1", 6379)
    broker = f"redis://127.0.0.1:6379/{os.getpid() % 15 + 1}"
    second_db = db_factory.fresh()
    nodes: list[Node] = []
    try:
        for name, db_url in (("a", settings.resolved_database_url), ("b", second_db)):
            port = free_port()
            data = tmp_path / name
            data.mkdir()
            # The same registry copy, but each node its own node key and identity.
            s = make_settings(
                db_url,
                data,
                {**world.secrets, "PALERMO_NODE_SIGNING_KEY": _new_key()},
            ).model_copy(
                update={"node_id": f"{name}.palermo.test", "public_url": f"http://127.0.0.1:{port}"}
            )
            queue = f"palermo-peer-{name}-{os.getpid()}-{time.monotonic_ns()}"
            log = tmp_path / f"{name}.log"
            env = _env(s, broker)
            exe = [sys.executable, "-m", "broker.cli"]
            with log.open("wb") as out:
                procs = [
                    subprocess.Popen(
                        [*exe, "serve", "--port", str(port)],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    ),
                    subprocess.Popen(
                        [
                            *exe,
                            "worker",
                            "--pool",
                            "solo",
                            "--queues",
                            queue,
                            "--hostname",
                            f"{queue}@%h",
                        ],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    ),
                ]
            nodes.append(Node(name, s, s.public_url, queue, broker, world, procs, log))
        for node in nodes:
            _wait_ready(node)
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            for proc in node.procs:
                proc.terminate()
            for proc in node.procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        db_factory.drop(second_db)


def _wait_ready(node: Node) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in node.procs), node.tail()
        try:
            if httpx.get(node.url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"node {node.name} not ready:\n{node.tail()}")


def _until(nodes: tuple[Node, Node], done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for node in nodes:
            node.relay()
        time.sleep(0.5)
        if done():
            return
    raise AssertionError(f"{what} did not happen:\n" + "\n".join(n.tail() for n in nodes))


def _inbox(node: Node, login: str) -> list[dict[str, Any]]:
    r = node.call("GET", "/v1/inbox", login)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.mark.slow
@pytest.mark.worker
def test_two_nodes_exchange_both_ways(two_nodes: tuple[Node, Node], world: World) -> None:
    a, b = two_nodes
    # A hosts de.bka, B hosts nl.fiu: each registers the other's participant behind a peer.
    for here, there, remote in ((a, b, "nl.fiu"), (b, a, "de.bka")):
        r = here.call(
            "PUT",
            f"/v1/participants/{remote}/adapter",
            "it.admin",
            json={"adapter": "peer", "config": {"url": there.url, "node_key": there.node_key}},
        )
        assert r.status_code == 200, r.text

    de_key, nl_key = world.keys["de.bka"], world.keys["nl.fiu"]
    sent = a.call("POST", "/v1/messages", "de.system", json=envelope(de_key, recipient="nl.fiu"))
    assert sent.status_code == 202, sent.text
    there_id = sent.json()["id"]
    _until((a, b), lambda: bool(_inbox(b, "nl.officer")), "A -> B")
    [item] = _inbox(b, "nl.officer")
    assert item["message"]["id"] == there_id
    assert item["message"]["sender"] == "de.bka"

    reply = sign(nl_key, payload(nl_key, recipient="de.bka", in_reply_to=there_id))
    back = b.call("POST", "/v1/messages", "nl.officer", json=reply)
    assert back.status_code == 202, back.text
    back_id = back.json()["id"]
    _until((a, b), lambda: bool(_inbox(a, "de.system")), "B -> A")
    [item] = _inbox(a, "de.system")
    assert item["message"]["id"] == back_id
    assert item["message"]["in_reply_to"] == there_id

    # The origin sees the forwarding as a delivery by the peer adapter.
    status = a.call("GET", f"/v1/messages/{there_id}", "de.system").json()
    assert status["status"] == "delivered"
    assert [(x["adapter"], x["outcome"]) for x in status["attempts"]] == [("peer", "delivered")]
    # B's copy: the sender's signature and B's countersignature, readable by the recipient.
    content = b.call(
        "GET",
        f"/v1/messages/{there_id}/content",
        "nl.officer",
        params={"justification": "case review of the federated message"},
    ).json()
    keyids = [s["keyid"] for s in content["envelope"]["signatures"]]
    assert keyids == [de_key.kid, Signer(b.settings.node_signing_seed).key_id]
    assert (
        content["payload"]["body"]
        == orjson.loads(base64.b64decode(envelope(de_key, recipient="nl.fiu")["payload"]))["body"]
    )
    # Each message is stored once on each side, whatever the retries.
    for node, mid in ((a, there_id), (b, there_id), (a, back_id), (b, back_id)):
        engine = make_sync_engine(node.settings.resolved_database_url)
        try:
            assert count_rows(engine, "messages", "id = :m", m=mid) == 1
        finally:
            engine.dispose()


def test_a_forwarded_envelope_on_a_derogation_is_not_held_again(
    api: Api, peer_key: Signer, sync_engine: Engine
) -> None:
    """The sender's node held the envelope for its own supervisor's approval (LED art.
    38(2)); here, where nobody of the sender could approve it, it is delivered."""
    body = _forwarded(api, peer_key, recipient="us.central-authority", transfer_basis="derogation")
    r = _post(api, body, peer_key)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    assert count_rows(sync_engine, "message_approvals") == 0
    assert relay(api.settings) == 1
    [item] = api.get("/v1/inbox", as_="us.officer").json()["items"]
    assert item["message"]["id"] == r.json()["id"]
