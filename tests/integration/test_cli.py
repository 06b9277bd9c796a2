"""The ``palermo`` command line: operator commands on a fresh node, and the client commands
against a real API server process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker.cli import main
from broker.core.settings import ConfigurationError, Settings
from tests.conftest import Api
from tests.support.processes import free_port


@pytest.fixture
def node_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[Path]:
    """A fresh node: an empty database (dropped afterwards) and an empty data directory."""
    for key in list(os.environ):
        if key.startswith("PALERMO_"):
            monkeypatch.delenv(key)
    if database_url.startswith("postgresql"):
        # The template holds the seeded world; the CLI starts from an empty schema instead.
        import psycopg

        base, name = database_url.rsplit("/", 1)
        fresh = f"{name}_cli"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{fresh}"'.encode())
        url = f"{base}/{fresh}"
    else:
        url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("PALERMO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PALERMO_DATABASE_URL", url)
    yield tmp_path / "data"
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)'.encode())


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> str:
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv))
    finally:
        sys.stdin = sys.__stdin__
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_operator_commands(node_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "init")
    assert "master.key" in out
    assert (node_env / "master.key").stat().st_mode & 0o077 == 0
    assert "created" not in run(capsys, "init")  # idempotent: secrets are never replaced

    run(
        capsys,
        "participant",
        "add",
        "it.central-authority",
        "--kind",
        "central_authority",
        "--name",
        "Italy",
    )
    run(capsys, "participant", "add", "de.bka", "--kind", "police", "--name", "BKA")
    listing = run(capsys, "participant", "list")
    assert "it.central-authority" in listing
    assert "de.bka" in listing

    assert "custodial" in run(capsys, "key", "generate", "it.central-authority")
    run(capsys, "key", "generate", "it.central-authority", "--purpose", "encryption")
    key_file = node_env / "de.json"
    assert "self-held" in run(capsys, "key", "generate", "de.bka", "--out", str(key_file))
    stored = json.loads(key_file.read_text())
    assert stored["participant"] == "de.bka"
    assert key_file.stat().st_mode & 0o077 == 0
    run(
        capsys,
        "key",
        "add",
        "de.bka",
        "--purpose",
        "encryption",
        "--public-key",
        "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",
    )
    rotated = run(capsys, "key", "rotate", "it.central-authority", "--grace-days", "3")
    assert "valid 3 more days" in rotated
    keys = run(capsys, "key", "list", "de.bka")
    assert stored["kid"] in keys
    run(capsys, "key", "revoke", "de.bka", stored["kid"], "--reason", "test")
    assert "revoked" in run(capsys, "key", "list", "de.bka")

    run(
        capsys,
        "user",
        "add",
        "it.central-authority",
        "anna",
        "--role",
        "officer",
        stdin="a long enough password\n",
    )
    secret = json.loads(run(capsys, "client", "add", "de.bka", "de-system"))
    assert len(secret["client_secret"]) > 30


def test_operator_errors_exit_2_with_a_message(
    node_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "init")
    assert main(["participant", "add", "xx", "--kind", "police", "--name", "x"]) != 0
    assert main(["key", "generate", "zz.nobody"]) == 2
    assert "no participant zz.nobody" in capsys.readouterr().err
    assert main(["user", "add", "zz.nobody", "u", "--role", "officer"]) == 2


def test_settings_fail_closed(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="palermo init"):
        Settings(data_dir=tmp_path).check_startup()
    with pytest.raises(ConfigurationError, match="32 bytes"):
        Settings(data_dir=tmp_path, master_key="c2hvcnQ=").master_key_bytes  # noqa: B018
    from broker.core.settings import DEV_MARKER, write_secret_files

    write_secret_files(tmp_path)
    (tmp_path / DEV_MARKER).write_text("dev")
    prod = Settings(data_dir=tmp_path, env="production", database_url="postgresql://x/y")
    with pytest.raises(ConfigurationError, match="development node"):
        prod.check_startup()
    (tmp_path / DEV_MARKER).unlink()
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        Settings(data_dir=tmp_path, env="production").check_startup()
    production: dict[str, Any] = {
        "data_dir": tmp_path,
        "env": "production",
        "database_url": "postgresql://x/y",
        "public_url": "https://palermo.example.org",
        "celery_broker_url": "amqp://palermo@rabbitmq//",
    }
    Settings(**production).check_startup()
    with pytest.raises(ConfigurationError, match="https"):
        Settings(**{**production, "public_url": "http://palermo.example.org"}).check_startup()
    with pytest.raises(ConfigurationError, match="message broker"):
        Settings(**{**production, "celery_broker_url": ""}).check_startup()
    secret = (tmp_path / "master.key").read_text().strip()
    with pytest.raises(ConfigurationError, match="three different secrets"):
        Settings(**production, token_secret=secret).check_startup()
    (tmp_path / "master.key").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        Settings(**production).check_startup()
    Settings(**production, master_key=secret).check_startup()  # from the environment: no file


@pytest.fixture
def live_server(api: Api, tmp_path: Path) -> Iterator[str]:
    """The real API as a process (``palermo serve``) on the test's database."""
    port = free_port()
    settings = api.settings
    assert settings.master_key is not None
    assert settings.node_signing_key is not None
    assert settings.token_secret is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PALERMO_")},
        "PALERMO_DATA_DIR": str(tmp_path),
        "PALERMO_DATABASE_URL": settings.resolved_database_url,
        "PALERMO_MASTER_KEY": settings.master_key.get_secret_value(),
        "PALERMO_NODE_SIGNING_KEY": settings.node_signing_key.get_secret_value(),
        "PALERMO_TOKEN_SECRET": settings.token_secret.get_secret_value(),
        "PALERMO_PUBLIC_URL": "http://testserver",
        "PALERMO_ENV": "test",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "broker.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_client_commands_send_read_and_receipt(
    api: Api,
    live_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.conftest import PASSWORD
    from tests.integration.messaging_helpers import relay

    key_file = tmp_path / "de.json"
    api.world.keys["de.bka"].save(key_file)
    monkeypatch.setenv("PALERMO_CLIENT_SECRET", api.world.client_secrets["de.system"])
    sent = json.loads(
        run(
            capsys,
            "send",
            "--url",
            live_server,
            "--client-id",
            "de.system",
            "--key",
            str(key_file),
            "--to",
            "it.central-authority",
            "--legal-basis",
            "UNTOC art. 27",
            "--purpose",
            "RG 1/26",
            "--handling",
            "H0",
            "--evaluation",
            "B2",
            "--statement-kind",
            "fact",
            "--body",
            '{"summary": "meeting in Livorno"}',
        )
    )
    assert sent["status"] == "accepted"
    status = json.loads(
        run(capsys, "status", "--url", live_server, "--client-id", "de.system", sent["id"])
    )
    assert status["status"] == "accepted"
    relay(api.settings)

    monkeypatch.setenv("PALERMO_PASSWORD", PASSWORD)
    inbox = json.loads(run(capsys, "inbox", "--url", live_server, "--user", "it.officer"))
    assert [i["message"]["id"] for i in inbox["items"]] == [sent["id"]]
    content = json.loads(
        run(
            capsys,
            "read",
            "--url",
            live_server,
            "--user",
            "it.officer",
            sent["id"],
            "--justification",
            "reading the Livorno lead",
        )
    )
    assert content["payload"]["body"] == {"summary": "meeting in Livorno"}
    receipted = json.loads(
        run(capsys, "receipt", "--url", live_server, "--user", "it.officer", sent["id"])
    )
    assert receipted["status"] == "receipted"
    # A custodial sender drafts; a refused draft prints the problem and exits 1.
    drafted = json.loads(
        run(
            capsys,
            "send",
            "--url",
            live_server,
            "--user",
            "it.officer",
            "--to",
            "de.bka",
            "--legal-basis",
            "UNTOC art. 27",
            "--purpose",
            "RG 1/26",
            "--handling",
            "H0",
            "--evaluation",
            "B2",
            "--statement-kind",
            "assessment",
            "--body",
            "{}",
        )
    )
    assert drafted["status"] == "accepted"
    code = main(["send", "--url", live_server, "--user", "it.officer", "--to", "de.bka"])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["type"] == "urn:palermo:problem:policy-denied"


def test_init_keeps_secrets_given_by_the_environment_out_of_files(
    node_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64
    import secrets

    monkeypatch.setenv("PALERMO_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    run(capsys, "init")
    assert not (node_env / "master.key").exists()
    assert (node_env / "token.secret").exists()
