"""A rolling upgrade (issue 17 item 7): the release before and this one serve the same database.

Migrations are expand-then-contract (docs/operations.md, "Upgrades without downtime"): a
migration only adds what the release before it can ignore (tables, nullable columns or columns
with a server default, indexes); what a release stops using is dropped a release later. So
during a rollout the old api keeps working on the new schema, and both run at once.

"The release before" is the code as main held it just before the newest migration landed: the
first-parent commit before the one that added the head revision's file, taken out of git with
``git archive`` and run from the same virtualenv. The test migrates a fresh database down to
that code's own head, starts its api, upgrades the schema under it, starts this release's api
beside it, and sends and reads messages through both.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from broker.core import migrate
from broker.core.settings import Settings
from tests.conftest import REQUIRE_SERVICES, TEST_DB, World
from tests.integration.messaging_helpers import envelope
from tests.integration.test_faults import _env, _token
from tests.support.processes import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
CODE = ["broker", "adapters", "policies", "audit"]


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True).stdout


def _head_of(migrations: Path) -> str:
    """The head revision of a release's migrations folder."""
    heads = ScriptDirectory(str(migrations)).get_heads()
    assert len(heads) == 1, f"{migrations} has heads {heads}"
    return heads[0]


def _release_before(into: Path) -> tuple[str, str]:
    """Unpack the previous release's code into ``into``; its commit and its schema head."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    head = script.get_revision("head")
    assert head is not None
    assert head.path is not None
    path = Path(head.path).relative_to(ROOT).as_posix()
    added = _git("log", "--first-parent", "--diff-filter=A", "--format=%H", "--", path).split()
    if not added:
        pytest.fail(f"git does not know when {path} was added: commit it first")
    before = f"{added[-1].decode()}^"
    try:
        commit = _git("rev-parse", "--verify", f"{before}^{{commit}}").decode().strip()
    except subprocess.CalledProcessError:
        # A shallow clone holds no release before: there is nothing to upgrade from.
        pytest.skip(f"this clone's history does not reach {before} (a shallow clone?)")
    archive = _git("archive", "--format=tar", commit, *CODE)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit, _head_of(into / "broker" / "migrations")


@contextmanager
def _api(env: dict[str, str], code: Path | None, log: Path) -> Iterator[str]:
    """An api process (``palermo serve``) of ``code`` (None: this checkout) on a free port."""
    port = free_port()
    # Ahead of the editable install on sys.path, so the release asked for is the one served.
    run_env = {**env, "PYTHONPATH": str(code or ROOT)}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", "serve", "--port", str(port)],
            env=run_env,
            cwd=str(code or ROOT),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, seconds=60, log=log.read_text)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _send(url: str, token: str, world: World) -> str:
    r = httpx.post(
        f"{url}/v1/messages",
        json=envelope(world.keys["de.bka"]),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    message_id: str = r.json()["id"]
    return message_id


def _status(url: str, token: str, message_id: str) -> str:
    r = httpx.get(
        f"{url}/v1/messages/{message_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    status: str = r.json()["status"]
    return status


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_the_release_before_and_this_one_serve_one_schema_during_a_rollout(
    settings: Settings, world: World, tmp_path: Path
) -> None:
    if TEST_DB != "postgresql":
        pytest.skip("a rolling upgrade is a PostgreSQL deployment's (PALERMO_TEST_DB=postgresql)")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        message = "the rolling upgrade test takes the release before from git history"
        if REQUIRE_SERVICES:
            pytest.fail(message + ", and this is no git checkout")
        pytest.skip(message)
    old_code = tmp_path / "release-before"
    commit, old_head = _release_before(old_code)
    url = settings.resolved_database_url
    # The test's database is a copy of the template at this release's head: take it back to
    # the schema the release before shipped (every migration has its downgrade).
    command.downgrade(migrate.alembic_config(url), old_head)
    env = {**_env(settings), "PALERMO_CELERY_BROKER_URL": "memory://"}
    env.pop("PYTHONPATH", None)
    token = _token(settings, world)

    with _api(env, old_code, tmp_path / "old-api.log") as old:
        before_upgrade = _send(old, token, world)
        # Expand: this release's migrations run while the old api serves.
        migrate.upgrade(url)
        after_upgrade = _send(old, token, world)
        with _api(env, None, tmp_path / "new-api.log") as new:
            from_new = _send(new, token, world)
            from_old = _send(old, token, world)
            sent = [before_upgrade, after_upgrade, from_new, from_old]
            # Each release reads what either wrote, and both see the same status.
            for message_id in sent:
                assert _status(old, token, message_id) == _status(new, token, message_id)
            assert len(set(sent)) == 4
    log = (tmp_path / "old-api.log").read_text()
    assert "Traceback" not in log, f"the release before ({commit[:12]}) failed:\n{log}"
