"""``palermo init`` and ``palermo dev`` make the data directory 0700 and the SQLite
databases 0600, whatever the umask: they hold the node's secrets and every message's
ciphertext. The WAL files SQLite makes when the node opens its database are 0600 too."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.cli.processes import prepare_dev_node
from broker.core.settings import Settings
from tests.integration.test_cli import run


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def fresh_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PALERMO_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PALERMO_PASSWORD_HASH", "fast")


def _wal_files_are_private(database: Path) -> None:
    """Open the database as the node does (WAL) and write: SQLite makes -wal and -shm."""
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        conn.execute("CREATE TABLE IF NOT EXISTS mode_probe (x INTEGER)")
        conn.execute("INSERT INTO mode_probe VALUES (1)")
        conn.commit()
        for suffix in ("-wal", "-shm"):
            side = database.with_name(database.name + suffix)
            assert side.exists(), side
            assert _mode(side) == 0o600, side
    finally:
        conn.close()


@pytest.mark.usefixtures("fresh_env", "loose_umask")
def test_init_makes_the_data_dir_and_sqlite_file_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PALERMO_DATA_DIR", str(data))
    run(capsys, "init")
    assert _mode(data) == 0o700
    assert (data / "palermo.db").exists()
    for path in data.glob("palermo.db*"):
        assert _mode(path) == 0o600, path
    _wal_files_are_private(data / "palermo.db")


@pytest.mark.usefixtures("fresh_env", "loose_umask")
def test_init_tightens_a_data_dir_and_database_made_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    database = data / "palermo.db"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    monkeypatch.setenv("PALERMO_DATA_DIR", str(data))
    run(capsys, "init")
    assert _mode(data) == 0o700
    assert _mode(database) == 0o600


@pytest.mark.usefixtures("fresh_env", "loose_umask")
def test_a_sqlite_url_with_its_driver_is_private_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "elsewhere" / "node.db"
    monkeypatch.setenv("PALERMO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PALERMO_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    run(capsys, "init")
    assert _mode(database) == 0o600
    assert _mode(database.parent) == 0o700


@pytest.mark.usefixtures("fresh_env", "loose_umask")
def test_dev_makes_the_data_dir_and_every_sqlite_file_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "not" / "yet" / "data"  # parents made too, 0700
    monkeypatch.setenv("PALERMO_DATA_DIR", str(data))
    prepare_dev_node(Settings())
    assert _mode(data) == 0o700
    assert _mode(data.parent) == 0o700
    for name in ("palermo.db", "celery-broker.db", "celery-results.db"):
        assert _mode(data / name) == 0o600, name
    for path in data.glob("*.db*"):
        assert _mode(path) == 0o600, path
    _wal_files_are_private(data / "palermo.db")
