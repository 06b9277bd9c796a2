"""deploy/compose.yaml: a schema check (the compose-spec fields it uses, no container engine
needed) and what the deployment promises: no host port on the api, a health check on every
long-running service, secrets only as files, the evidence volume shared by api and worker,
the app services connected as the least-privilege role and the owner used by init only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
APP_SERVICES = ("api", "worker", "beat")

_STRINGS = {"type": "array", "items": {"type": "string"}}
_DURATION = {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"}
_HEALTHCHECK = {
    "type": "object",
    "additionalProperties": False,
    "required": ["test"],
    "properties": {
        "test": {"oneOf": [{"type": "string"}, {**_STRINGS, "minItems": 2}]},
        "interval": _DURATION,
        "timeout": _DURATION,
        "start_period": _DURATION,
        "retries": {"type": "integer", "minimum": 1},
        "disable": {"type": "boolean"},
    },
}
_SERVICE_SECRET = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["source"],
            "properties": {"source": {"type": "string"}, "target": {"type": "string"}},
        },
    ]
}
_DEPENDENCY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["condition"],
    "properties": {
        "condition": {
            "enum": ["service_started", "service_healthy", "service_completed_successfully"]
        }
    },
}
_SERVICE = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "image": {"type": "string"},
        "build": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"context": {"type": "string"}, "dockerfile": {"type": "string"}},
        },
        "command": _STRINGS,
        "env_file": {"oneOf": [{"type": "string"}, _STRINGS]},
        "environment": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "read_only": {"type": "boolean"},
        "tmpfs": _STRINGS,
        "cap_drop": _STRINGS,
        "security_opt": _STRINGS,
        "expose": _STRINGS,
        "ports": _STRINGS,
        "volumes": _STRINGS,
        "secrets": {"type": "array", "items": _SERVICE_SECRET},
        "depends_on": {"type": "object", "additionalProperties": _DEPENDENCY},
        "healthcheck": _HEALTHCHECK,
    },
}
#: The part of the compose specification (github.com/compose-spec/compose-spec) this file
#: uses, with the spec's names and types; anything else is refused, so a typo fails here.
#: (check-jsonschema vendors no compose schema, and no installed package ships one.)
COMPOSE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["services"],
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {"type": "object", "additionalProperties": _SERVICE},
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "secrets": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["file"],
                "properties": {"file": {"type": "string"}},
            },
        },
    },
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _secrets(service: dict[str, Any]) -> dict[str, str]:
    """secret name -> the path it is mounted at in the container."""
    mounted = {}
    for item in service.get("secrets", []):
        if isinstance(item, str):
            mounted[item] = f"/run/secrets/{item}"
        else:
            mounted[item["source"]] = item.get("target", f"/run/secrets/{item['source']}")
    return mounted


def _volumes(service: dict[str, Any]) -> dict[str, str]:
    """volume (or host path) -> mount point."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        mounts[source] = target
    return mounts


def test_the_file_matches_the_compose_schema(compose: dict[str, Any]) -> None:
    jsonschema.validate(compose, COMPOSE_SCHEMA)
    services = compose["services"]
    for name, service in services.items():
        assert "image" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for secret in _secrets(service):
            assert secret in compose["secrets"], f"{name} mounts unknown secret {secret}"
        for volume in _volumes(service):
            if volume.startswith("./"):
                assert (DEPLOY / volume).is_file(), volume
            else:
                assert volume in compose["volumes"], (name, volume)


def test_only_the_proxy_publishes_a_port_on_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["api"]
    published = {name for name, s in services.items() if "ports" in s}
    assert published == {"proxy"}
    assert all(p.startswith("127.0.0.1:") for p in services["proxy"]["ports"])
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "http://api:8000" in nginx
    assert "resolver 127.0.0.11" in nginx  # Docker's DNS: every replica, re-resolved


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "init":
            # A one-shot: it has no "healthy" state; what follows waits for it to complete.
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        assert check is not None, f"{name} has no healthcheck"
        assert not check.get("disable", False), name
    for name, service in compose["services"].items():
        if "init" in service.get("depends_on", {}):
            condition = service["depends_on"]["init"]["condition"]
            assert condition == "service_completed_successfully", name


_SECRET_NAMES = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN|_KEY|DATABASE_URL|BROKER_URL)$")


def test_secrets_are_files_and_never_in_the_environment(compose: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        assert secret["file"].startswith("./secrets/"), name
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        mounted = set(_secrets(service).values())
        for key, value in environment.items():
            assert not _SECRET_NAMES.search(key), f"{name}: {key} in the environment"
            if key.endswith("_FILE"):
                assert value in mounted, f"{name}: {key}={value} is not a mounted secret"
    example = (DEPLOY / "palermo.env.example").read_text()
    settings = re.findall(r"^#?\s*(PALERMO_\w+)=", example, flags=re.MULTILINE)
    assert "PALERMO_PUBLIC_URL" in settings
    leaked = [s for s in settings if _SECRET_NAMES.search(s)]
    assert leaked == [], f"palermo.env.example sets secrets: {leaked}"
    assert "/deploy/secrets/" in (DEPLOY.parent / ".gitignore").read_text()


def test_the_evidence_volume_is_shared_by_api_and_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("api", "worker"):
        environment = services[name]["environment"]
        assert _volumes(services[name])["evidence"] == environment["PALERMO_EVIDENCE_DIR"]
    assert "evidence" in compose["volumes"]


def test_app_services_connect_as_the_app_role_and_init_as_the_owner(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    init = services["init"]
    role = init["command"][init["command"].index("--app-role") + 1]
    owner = init["command"][init["command"].index("--owner-role") + 1]
    assert "PALERMO_MIGRATION_DATABASE_URL_FILE" in init["environment"]
    for name in APP_SERVICES:
        service = services[name]
        assert "migration-database-url" not in _secrets(service), name
        assert "PALERMO_MIGRATION_DATABASE_URL_FILE" not in service["environment"]
        assert service["environment"]["PALERMO_DATABASE_URL_FILE"] == "/run/secrets/database-url"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
    # The secrets script writes the app role into database-url and the superuser (who makes
    # the owner and the app role) into the migration URL, as the compose file names them.
    script = (DEPLOY / "make-secrets.sh").read_text()
    superuser = services["postgres"]["environment"]["POSTGRES_USER"]
    assert f'put database-url "postgresql://{role}:' in script
    assert f'put migration-database-url "postgresql://{superuser}:' in script
    assert len({role, owner, superuser}) == 3
