"""``palermo init`` makes the data directory 0700 and the SQLite database 0600: they hold
the node's secrets and every message's ciphertext."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.test_cli import run


def test_init_makes_the_data_dir_and_sqlite_file_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("PALERMO_DATA_DIR", str(data))
    monkeypatch.delenv("PALERMO_DATABASE_URL", raising=False)
    old = os.umask(0o022)
    try:
        run(capsys, "init")
    finally:
        os.umask(old)
    assert data.stat().st_mode & 0o777 == 0o700
    for path in data.glob("palermo.db*"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (data / "palermo.db").exists()
