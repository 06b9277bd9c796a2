"""``PALERMO_<NAME>_FILE``: a setting read from a file (compose and Kubernetes secrets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.core.settings import ConfigurationError, Settings


def test_a_setting_comes_from_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = tmp_path / "database-url"
    url.write_text("postgresql://palermo_api:s3cret@postgres:5432/palermo\n")
    monkeypatch.delenv("PALERMO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PALERMO_DATABASE_URL_FILE", str(url))
    assert Settings().database_url == "postgresql://palermo_api:s3cret@postgres:5432/palermo"
    key = tmp_path / "master-key"
    key.write_text("a2V5\n")
    monkeypatch.setenv("PALERMO_MASTER_KEY_FILE", str(key))
    monkeypatch.delenv("PALERMO_MASTER_KEY", raising=False)
    master = Settings().master_key
    assert master is not None
    assert master.get_secret_value() == "a2V5"


def test_both_ways_or_an_unreadable_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PALERMO_NODE_ID", "a.node")
    monkeypatch.setenv("PALERMO_NODE_ID_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigurationError, match="both set"):
        Settings()
    monkeypatch.delenv("PALERMO_NODE_ID")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        Settings()


def test_no_setting_is_named_like_another_ones_file() -> None:
    """PALERMO_X_FILE reads X from a file: no setting X_FILE may exist beside a setting X."""
    names = set(Settings.model_fields)
    assert not {name for name in names if f"{name}_file" in names}
