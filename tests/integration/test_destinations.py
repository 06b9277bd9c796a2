"""Destinations an operator may not configure (issue 12): a webhook to an inside address is
a 422 at configuration and a dead letter at delivery when its name resolves inside; a drop
in a system directory or the node's data directory is a 422; and a node refuses to start
on such a configuration stored before the rule."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.app import create_app
from broker.core.settings import ConfigurationError, Settings
from tests.conftest import Api, World, count_rows
from tests.integration.messaging_helpers import envelope
from tests.integration.test_delivery_helpers import deliver_once


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allow_private": False})


@pytest.fixture
def strict_api(strict: Settings, world: World) -> Iterator[Api]:
    with TestClient(create_app(strict)) as client:
        yield Api(client, strict, world)


def _put(api: Api, adapter: str, config: dict[str, str]) -> object:
    return api.request(
        "PUT",
        "/v1/participants/nl.fiu/adapter",
        as_="it.admin",
        json={"adapter": adapter, "config": config},
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://localhost:8000/v1/admin",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1%25eth0]/",
        "https://10.0.0.5/hook",
        "https://192.168.0.1/hook",
        "https://[fd00::5]/hook",
        "https://0.0.0.0/hook",
        "https://239.1.2.3/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
    ],
)
def test_a_webhook_to_an_inside_address_is_a_422(strict_api: Api, url: str) -> None:
    r = _put(strict_api, "webhook", {"url": url})
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    problem = r.json()  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert problem["type"] == "urn:palermo:problem:adapter-config"
    assert problem["field"] == "adapter_config.url"
    assert "PALERMO_WEBHOOK_ALLOW_PRIVATE" in problem["detail"]
    current = strict_api.get("/v1/participants/nl.fiu/adapter", as_="it.admin").json()
    assert current["adapter"] == "inbox"  # nothing stored


def test_the_setting_allows_a_gateway_on_loopback(api: Api) -> None:
    assert api.settings.webhook_allow_private
    assert _put(api, "webhook", {"url": "http://127.0.0.1:9/hook"}).status_code == 200  # type: ignore[attr-defined]


def test_delivery_refuses_a_name_that_resolves_inside(
    api: Api, strict: Settings, sync_engine: Engine
) -> None:
    name = socket.gethostname()  # resolves to this machine (tests/unit/adapters skips if not)
    # Accepted at configuration: a name, not an address.
    r = _put(api, "webhook", {"url": f"https://{name}:9/hook"})
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    key = api.world.keys["de.bka"]
    sent = api.post("/v1/messages", as_="de.system", json=envelope(key, recipient="nl.fiu"))
    assert sent.status_code == 202, sent.text
    # Refused for good before any connection, not retried as an unreachable endpoint.
    report = deliver_once(strict)
    assert report.dead_lettered == 1
    with sync_engine.connect() as conn:
        error = conn.execute(text("SELECT error FROM delivery_attempts")).scalar_one()
    assert f"{name} resolves to" in error
    assert "PALERMO_WEBHOOK_ALLOW_PRIVATE" in error


@pytest.mark.parametrize("directory", ["/etc", "/", "/usr/lib", "/proc", "/var/lib", "/boot"])
@pytest.mark.parametrize("adapter", ["filedrop", "goaml"])
def test_a_drop_in_a_system_directory_is_a_422(api: Api, adapter: str, directory: str) -> None:
    r = _put(api, adapter, {"directory": directory})
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert "system directory" in r.json()["detail"]  # type: ignore[attr-defined]
    assert r.json()["field"] == "adapter_config.directory"  # type: ignore[attr-defined]


def test_a_drop_in_the_node_s_data_or_evidence_directory_is_a_422(api: Api) -> None:
    evidence = api.settings.data_dir / "evidence"
    evidence.mkdir(exist_ok=True)
    for directory in (api.settings.data_dir, evidence):
        r = _put(api, "filedrop", {"directory": str(directory)})
        assert r.status_code == 422, r.text  # type: ignore[attr-defined]
        assert "the node's own" in r.json()["detail"]  # type: ignore[attr-defined]


def test_the_node_does_not_start_on_an_inside_webhook_stored_before(
    strict: Settings, sync_engine: Engine, world: World
) -> None:
    with sync_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE participants SET adapter = 'webhook', "
                """adapter_config = '{"url": "https://169.254.169.254/x"}' WHERE id = 'nl.fiu'"""
            )
        )
    refused = pytest.raises(ConfigurationError, match=r"participant nl\.fiu: address 169\.254")
    with refused, TestClient(create_app(strict)):
        pass
    assert count_rows(sync_engine, "participants", "adapter = 'webhook'") == 1


def test_a_drop_of_its_own_is_accepted(api: Api, tmp_path: Path) -> None:
    drop = tmp_path / "to-nl"
    drop.mkdir()
    assert _put(api, "filedrop", {"directory": str(drop)}).status_code == 200  # type: ignore[attr-defined]
