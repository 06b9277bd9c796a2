"""Fuzzing (issue 12): schemathesis generates requests from the whole OpenAPI document and
sends them to the app, with a token of each role and without one; any 5xx, or an answer
that its declared schema or content type does not describe, fails. Bounded: at most
``PALERMO_FUZZ_EXAMPLES`` (default 3) examples per operation and role. Runs on both
databases (``PALERMO_TEST_DB``)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.conftest import Api

EXAMPLES = int(os.environ.get("PALERMO_FUZZ_EXAMPLES", "3"))
# One account of each role (tests/conftest.py ACCOUNTS), and no token at all.
ROLES = {
    "anonymous": None,
    "officer": "it.officer",
    "supervisor": "it.supervisor",
    "admin": "it.admin",
    "system": "de.system",
    "oversight": "oversight",
}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_fuzz_every_operation(api: Api, role: str) -> None:
    schema = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
    headers = api.headers(ROLES[role])
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}

    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @given(case=operation.as_strategy())
        @hsettings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
            kwargs.pop("cookies", None)
            response = api.client.request(**kwargs)
            statuses.setdefault(case.operation.label, set()).add(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:
                failures.append(
                    f"{case.operation.label} as {role}: {response.status_code} "
                    f"{response.text[:300]!r}: {str(exc)[:500]}"
                )

        run()
    assert not failures, "\n\n".join(failures[:20])
    # Every operation was reached, and some beyond the authentication check.
    assert len(statuses) == len(api.get("/openapi.json").json()["paths"]) or len(statuses) > 50
    if ROLES[role] is not None:
        assert any(code < 400 or code == 422 for codes in statuses.values() for code in codes)
