"""Atomic writes of the file drop: a file appears whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters import filedrop
from adapters.contracts import AdapterConfigError


def test_a_written_file_is_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = filedrop.write_atomically(tmp_path, "m.json", b'{"a": 1}')
    assert path.read_bytes() == b'{"a": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    filedrop.write_atomically(tmp_path, "m.json", b'{"a": 2}')  # replaced, still one file
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [b'{"a": 2}']


def test_a_failed_write_leaves_neither_a_partial_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        filedrop.write_atomically(tmp_path, "m.json", b"x" * 100_000)
    assert list(tmp_path.iterdir()) == []


def test_readers_take_complete_json_files_only_and_settle_them(tmp_path: Path) -> None:
    for name in ("b.json", "a.json", ".a.json.1234.tmp", "notes.txt"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "dir.json").mkdir()
    assert [p.name for p in filedrop.drop_files(tmp_path)] == ["a.json", "b.json"]
    filedrop.settle(tmp_path / "a.json", accepted=True)
    filedrop.settle(tmp_path / "b.json", accepted=False, reason="bad-signature: no")
    assert (tmp_path / "processed" / "a.json").exists()
    assert (tmp_path / "rejected" / "b.json.reason").read_text() == "bad-signature: no\n"
    assert filedrop.drop_files(tmp_path) == []


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ({}, "absolute path"),
        ({"directory": "relative/dir"}, "absolute path"),
        ({"directory": "/nonexistent-palermo-drop"}, "does not exist"),
        ({"directory": "/srv/drop", "node_key": "short"}, "base64"),
        ({"directory": "/tmp", "other": 1}, "unknown filedrop setting"),
    ],
)
def test_configuration_is_checked(config: dict[str, object], why: str) -> None:
    def check_and_probe() -> None:
        filedrop.probe(filedrop.check(config))

    with pytest.raises(AdapterConfigError, match=why):
        check_and_probe()
