"""The suite's shared route state (tests/support/routes.py) holds only while its premise does."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from broker.app import create_app
from broker.core.settings import Settings
from tests.support.routes import share_route_state, shared_routes

BROKER = Path(__file__).resolve().parents[3] / "broker"


def test_no_application_code_overrides_dependencies() -> None:
    # The shared state ignores each application's dependency_overrides_provider: sound only
    # while no application sets an override.
    users = [p for p in BROKER.rglob("*.py") if "dependency_overrides" in p.read_text()]
    assert users == []


def test_a_second_application_reuses_the_first_ones_route_state(settings: Settings) -> None:
    assert share_route_state()  # conftest patched it; patching again changes nothing
    with TestClient(create_app(settings)) as first:
        assert first.get("/v1/inbox").status_code == 401
        assert first.get("/v1/no-such-route").status_code == 404  # matched against every route
    built = shared_routes()
    assert built > 100
    second_app = create_app(settings)
    assert second_app.dependency_overrides == {}
    with TestClient(second_app) as second:
        answer = second.get("/v1/inbox")
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert second.get("/v1/no-such-route").status_code == 404
    assert shared_routes() == built
