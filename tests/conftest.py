"""Test harness: real databases made by the Alembic migrations.

``PALERMO_TEST_DB`` picks the database: ``sqlite`` (default, the embedded node) or
``postgresql`` (``PALERMO_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432``).
A session-wide template database is migrated and seeded once; every test gets a fresh copy
(a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so tests commit for
real and run isolated, and a worker process can see what a test wrote. Under pytest-xdist
(``make test`` runs ``-n 2``) each xdist worker has its own template and copies: the names
carry the worker's process id.

``PALERMO_TEST_REQUIRE_SERVICES=1`` (set in CI) turns a missing PostgreSQL, Redis or RabbitMQ
into a failure instead of a skip.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.accounts import service as accounts
from broker.accounts.models import AccountKind
from broker.app import create_app
from broker.client import KeyFile
from broker.core import crypto, migrate
from broker.core.context import Actor, node_context
from broker.core.db import Database, make_sync_engine
from broker.core.settings import PasswordHashSettings, Settings
from broker.core.tokens import issue_token
from broker.participants import service as participants
from tests.support.routes import share_route_state

PG_URL = os.environ.get("PALERMO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
TEST_DB = os.environ.get("PALERMO_TEST_DB", "sqlite")
REQUIRE_SERVICES = os.environ.get("PALERMO_TEST_REQUIRE_SERVICES") == "1"
# The cheapest argon2 parameters, for the tests' process only: the suite makes and checks
# hundreds of password hashes. tests/unit/broker/test_password_hashing.py checks that
# production keeps the strong ones.
crypto.configure_password_hashing(PasswordHashSettings(env="test", password_hash="fast"))
# Each route's FastAPI state is built once per test process, not once per application.
share_route_state()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, leave out the unit tests that use no database.

    The PostgreSQL run exists to prove what depends on the database; a unit test that asks for
    no database (no ``database_url`` in its fixtures) gives the same answer on both runs, and
    the SQLite run has already given it.
    """
    if TEST_DB != "postgresql":
        return
    unit = Path(__file__).parent / "unit"
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        uses_db = "database_url" in getattr(item, "fixturenames", ())
        (kept if uses_db or not item.path.is_relative_to(unit) else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_service(name: str, host: str, port: int) -> None:
    """Skip (or, with PALERMO_TEST_REQUIRE_SERVICES=1, fail) when a service is down."""
    if service_up(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and PALERMO_TEST_REQUIRE_SERVICES=1")
    pytest.skip(message)


PARTICIPANTS = [
    ("it.central-authority", "central_authority", "Italy central authority"),
    ("nl.fiu", "fiu", "FIU the Netherlands"),
    ("de.bka", "police", "Bundeskriminalamt"),
    ("us.central-authority", "central_authority", "US central authority"),
    ("it.garante", "oversight", "Italian supervisory authority"),
    ("fr.suspended", "police", "A suspended participant"),
]
# login -> (participant, kind, roles)
ACCOUNTS = {
    "it.officer": ("it.central-authority", AccountKind.PERSON, {"officer"}),
    "it.supervisor": ("it.central-authority", AccountKind.PERSON, {"supervisor"}),
    "it.admin": ("it.central-authority", AccountKind.PERSON, {"admin"}),
    "nl.officer": ("nl.fiu", AccountKind.PERSON, {"officer"}),
    "us.officer": ("us.central-authority", AccountKind.PERSON, {"officer"}),
    "de.system": ("de.bka", AccountKind.SYSTEM, {"system"}),
    "oversight": ("it.garante", AccountKind.PERSON, {"oversight"}),
    "us.supervisor": ("us.central-authority", AccountKind.PERSON, {"supervisor"}),
    "nl.supervisor": ("nl.fiu", AccountKind.PERSON, {"supervisor"}),
    "it.system": ("it.central-authority", AccountKind.SYSTEM, {"system"}),
}
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    """What the template database holds: participants, accounts, keys."""

    secrets: dict[str, str]
    account_ids: dict[str, str] = field(default_factory=dict)
    client_secrets: dict[str, str] = field(default_factory=dict)
    keys: dict[str, KeyFile] = field(default_factory=dict)


def _secrets() -> dict[str, str]:
    return {
        "PALERMO_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PALERMO_NODE_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "PALERMO_TOKEN_SECRET": base64.b64encode(secrets.token_bytes(48)).decode(),
    }


def make_settings(database_url: str, data_dir: Path, world_secrets: dict[str, str]) -> Settings:
    return Settings(
        env="test",
        data_dir=data_dir,
        database_url=database_url,
        master_key=world_secrets["PALERMO_MASTER_KEY"],
        node_signing_key=world_secrets["PALERMO_NODE_SIGNING_KEY"],
        token_secret=world_secrets["PALERMO_TOKEN_SECRET"],
        public_url="http://testserver",
        node_id="test.palermo",
        log_json=True,
        db_pool_size=4,
        password_hash="fast",
        hub_operator=True,  # the seeded admin manages every participant's accounts
        # The agencies' endpoints the tests start listen on loopback.
        webhook_allow_private=True,
    )


async def _seed(settings: Settings, world: World) -> None:
    db = Database(settings.resolved_database_url, pool_size=1)
    node = node_context(settings)
    actor = Actor(None, "test-seed")
    async with db.session() as s:
        for pid, kind, name in PARTICIPANTS:
            await participants.register_participant(
                s, node=node, participant_id=pid, kind=kind, display_name=name, actor=actor
            )
            for purpose in ("signing", "encryption"):
                await participants.add_key(
                    s,
                    node=node,
                    participant_id=pid,
                    purpose=purpose,
                    public_key=None,
                    generate=True,
                    actor=actor,
                )
        await participants.update_participant(
            s,
            node=node,
            participant_id="fr.suspended",
            display_name=None,
            status="suspended",
            actor=actor,
        )
        for login, (pid, kind, roles) in ACCOUNTS.items():
            account, secret = await accounts.create_account(
                s,
                node=node,
                participant_id=pid,
                kind=kind,
                login=login,
                display_name=login,
                secret=PASSWORD if kind is AccountKind.PERSON else None,
                roles=frozenset(roles),
                actor=actor,
            )
            world.account_ids[login] = account.id
            world.client_secrets[login] = secret
        for pid in ("de.bka", "nl.fiu"):
            made = await participants.add_key(
                s,
                node=node,
                participant_id=pid,
                purpose="signing",
                public_key=None,
                generate=True,
                actor=actor,
                custodial=False,
            )
            assert made.private_key is not None
            world.keys[pid] = KeyFile(pid, made.key.kid, made.private_key)
        await s.commit()
    await db.dispose()


class DatabaseFactory:
    """Makes fresh copies of the migrated, seeded template database.

    On PostgreSQL the copies are made and dropped off the tests' path. A copy is made ahead,
    in the background, while the test before runs (``CREATE DATABASE ... TEMPLATE`` takes
    some 80 ms here). Drops are gathered and made in batches, in the background: PostgreSQL
    15 runs a checkpoint for every ``DROP DATABASE``, which costs about a second when the
    tests have dirtied pages and a few tens of milliseconds right after another drop, so a
    batch pays for one checkpoint instead of one per test.
    """

    DROP_BATCH = 24

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.template_name = f"palermo_tpl_{self.tag}"
        self.made = 0
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="make-db")
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drop-db")
        self._next: Future[str] | None = None
        self._to_drop: list[str] = []
        self._drops: list[Future[None]] = []

    @property
    def template_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.root / 'template.db'}"
        return f"{PG_URL}/{self.template_name}"

    def _admin(self, *statements: str) -> None:
        with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql.encode())

    def create_template(self) -> None:
        if self.kind == "postgresql":
            self._admin(f'CREATE DATABASE "{self.template_name}"')

    def finish_template(self) -> None:
        if self.kind == "sqlite":
            # Fold the WAL into the file so that a file copy is the whole database.
            conn = sqlite3.connect(self.root / "template.db")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()

    def _name(self) -> str:
        self.made += 1
        return f"palermo_t_{self.tag}_{self.made}"

    def _make(self, name: str) -> str:
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template_name}"')
        return name

    def fresh(self) -> str:
        if self.kind == "sqlite":
            path = self.root / f"{self._name()}.db"
            shutil.copyfile(self.root / "template.db", path)
            return f"sqlite:///{path}"
        ready = self._next or self._maker.submit(self._make, self._name())
        name = ready.result()
        self._next = self._maker.submit(self._make, self._name())
        return f"{PG_URL}/{name}"

    def drop(self, url: str) -> None:
        if self.kind != "postgresql":
            return
        self._to_drop.append(url.rsplit("/", 1)[1])
        # One batch at a time: while one is being dropped the next grows, and a bigger batch
        # costs less per database, so the drops never fall behind the tests.
        if len(self._to_drop) >= self.DROP_BATCH and all(d.done() for d in self._drops[-1:]):
            self._drop_pending()

    def _drop_pending(self) -> None:
        batch, self._to_drop = self._to_drop, []
        if batch:
            sql = [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in batch]
            self._drops.append(self._dropper.submit(self._admin, *sql))

    def cleanup(self) -> None:
        self._maker.shutdown(wait=True)
        if self._next is not None:
            self._to_drop.append(self._next.result())
        self._drop_pending()
        self._dropper.shutdown(wait=True)
        for done in self._drops:
            done.result()  # a failed drop fails the session rather than leaking databases
        if self.kind == "postgresql":
            self._admin(f'DROP DATABASE IF EXISTS "{self.template_name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def db_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    if TEST_DB == "postgresql":
        need_service("PostgreSQL", "127.0.0.1", 5432)
    factory = DatabaseFactory(TEST_DB, tmp_path_factory.mktemp("db"))
    factory.create_template()
    yield factory
    factory.cleanup()


@pytest.fixture(scope="session")
def world(db_factory: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory) -> World:
    w = World(secrets=_secrets())
    migrate.upgrade(db_factory.template_url)
    settings = make_settings(db_factory.template_url, tmp_path_factory.mktemp("tpl"), w.secrets)
    asyncio.run(_seed(settings, w))
    db_factory.finish_template()
    return w


@pytest.fixture
def database_url(db_factory: DatabaseFactory, world: World) -> Iterator[str]:
    url = db_factory.fresh()
    yield url
    db_factory.drop(url)


@pytest.fixture
def settings(database_url: str, world: World, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, world.secrets)


@pytest.fixture
def sync_engine(settings: Settings) -> Iterator[Engine]:
    """A plain engine on the test's database, to look at what was stored."""
    engine = make_sync_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


class Api:
    """A TestClient with tokens for the world's accounts."""

    def __init__(self, client: TestClient, settings: Settings, world: World) -> None:
        self.client = client
        self.settings = settings
        self.world = world

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

    def headers(self, login: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(login)}"} if login else {}

    def request(self, method: str, path: str, *, as_: str | None = None, **kw: Any) -> Any:
        headers = {**self.headers(as_), **kw.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kw)

    def get(self, path: str, *, as_: str | None = None, **kw: Any) -> Any:
        return self.request("GET", path, as_=as_, **kw)

    def post(self, path: str, *, as_: str | None = None, **kw: Any) -> Any:
        return self.request("POST", path, as_=as_, **kw)


@pytest.fixture
def api(settings: Settings, world: World) -> Iterator[Api]:
    app = create_app(settings)
    with TestClient(app) as client:
        yield Api(client, settings, world)


def count_rows(engine: Engine, table: str, where: str = "1=1", **params: Any) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
        )
