"""Evidence through the API: the size limit, the declared digest, who may read a file, and
the consultation every download leaves in the audit log."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import (
    DRAFTER,
    HANDLER,
    case_config,
    fire,
    to_execution,
    upload,
)


def test_the_size_limit_and_the_declared_digest(api: Api, sync_engine: Engine) -> None:
    case = to_execution(api)
    config = case_config(api)
    api.client.app.state.case_config = replace(config, evidence_max_bytes=1000)  # type: ignore[attr-defined]
    r = api.post(
        f"/v1/cases/{case['id']}/evidence",
        as_=HANDLER,
        params={"name": "big.bin"},
        content=b"x" * 1001,
    )
    assert r.status_code == 413, r.text
    assert r.json()["type"] == "urn:palermo:problem:payload-too-large"

    def chunks() -> object:
        yield b"x" * 600
        yield b"x" * 600

    r = api.post(
        f"/v1/cases/{case['id']}/evidence",
        as_=HANDLER,
        params={"name": "big.bin"},
        content=chunks(),
    )  # no Content-Length: stopped while streaming
    assert r.status_code == 413, r.text
    r = api.post(
        f"/v1/cases/{case['id']}/evidence",
        as_=HANDLER,
        params={"name": "a.txt", "sha256": hashlib.sha256(b"other").hexdigest()},
        content=b"content",
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "sha256"
    assert count_rows(sync_engine, "evidence_files") == 0
    assert list((config.evidence_dir / case["id"]).glob("*")) == []


def test_who_reads_a_file_and_that_reading_is_logged(api: Api, sync_engine: Engine) -> None:
    case = to_execution(api)
    file_id = upload(api, case["id"], HANDLER, b"witness statement")
    listed = api.get(f"/v1/cases/{case['id']}/evidence", as_=DRAFTER).json()["items"]
    assert listed == []  # not delivered yet
    mine = api.get(f"/v1/cases/{case['id']}/evidence", as_=HANDLER).json()["items"]
    assert [(f["id"], f["size"], f["delivered"]) for f in mine] == [(file_id, 17, False)]
    url = f"/v1/cases/{case['id']}/evidence/{file_id}"
    assert api.get(url, as_=HANDLER).status_code == 422  # a justification is required
    r = api.get(url, as_=HANDLER, params={"justification": "checking the upload"})
    assert r.status_code == 200
    assert r.content == b"witness statement"
    fire(api, case["id"], "deliver_partial", HANDLER, {"evidence": [file_id]})
    r = api.get(url, as_=DRAFTER, params={"justification": "evidence for the trial"})
    assert r.status_code == 200
    assert r.headers["x-content-sha256"] == hashlib.sha256(b"witness statement").hexdigest()
    assert "attachment" in r.headers["content-disposition"]
    assert api.get(url, as_="de.system", params={"justification": "x" * 20}).status_code == 404
    assert count_rows(sync_engine, "audit_events", "kind = 'content:consulted'") == 2
    assert count_rows(sync_engine, "audit_events", "kind = 'evidence:stored'") == 1
