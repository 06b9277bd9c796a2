"""Evidence names and media types: refused at upload when they could not be served or would
mislead (a 422 naming the field), and served safely whatever a stored row holds:
Content-Disposition is an attachment with a sanitised basename (RFC 6266 ``filename*`` and an
ASCII fallback), and every download carries ``nosniff`` and ``no-store``."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import HANDLER, to_execution, upload

JUSTIFY = {"justification": "checking the upload"}


def post_file(api: Api, case_id: str, **params: Any) -> Any:
    headers = {"Content-Type": params.pop("content_type", "application/pdf")}
    return api.post(
        f"/v1/cases/{case_id}/evidence",
        as_=HANDLER,
        params={"name": "records.pdf", **params},
        content=b"%PDF-1.7 records",
        headers=headers,
    )


@pytest.mark.parametrize(
    "media_type",
    ["text/plain\r\nSet-Cookie: a=b", "tëxt/plain", "notatype", "text/", "/plain", "a/b c"],
)
def test_a_media_type_that_is_not_type_subtype_is_a_422(
    api: Api, sync_engine: Engine, media_type: str
) -> None:
    case = to_execution(api)
    r = post_file(api, case["id"], media_type=media_type)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "media_type"
    assert "RFC 6838" in r.json()["detail"]
    assert count_rows(sync_engine, "evidence_files") == 0


def test_a_content_type_header_with_parameters_is_its_type_and_subtype(api: Api) -> None:
    case = to_execution(api)
    r = post_file(api, case["id"], content_type="Text/Plain; charset=utf-8")
    assert r.status_code == 201, r.text
    assert r.json()["media_type"] == "text/plain"


@pytest.mark.parametrize("name", ["invoice\u202efdp.exe", "a\r\nb.pdf", "zero\u200bwidth.pdf"])
def test_a_file_name_with_control_or_format_characters_is_a_422(
    api: Api, sync_engine: Engine, name: str
) -> None:
    case = to_execution(api)
    r = post_file(api, case["id"], name=name)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "name"
    assert count_rows(sync_engine, "evidence_files") == 0


def test_a_download_carries_nosniff_no_store_and_a_safe_disposition(api: Api) -> None:
    case = to_execution(api)
    file_id = upload(api, case["id"], HANDLER, b"records", name="Verbale d'udienza é.pdf")
    r = api.get(f"/v1/cases/{case['id']}/evidence/{file_id}", as_=HANDLER, params=JUSTIFY)
    assert r.status_code == 200, r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert "filename*=UTF-8''Verbale%20d%27udienza%20%C3%A9.pdf" in disposition
    assert 'filename="Verbale d_udienza e.pdf"' in disposition


def test_html_evidence_is_an_attachment_never_inline(api: Api) -> None:
    case = to_execution(api)
    r = post_file(api, case["id"], name="page.html", content_type="text/html")
    assert r.status_code == 201, r.text
    r = api.get(f"/v1/cases/{case['id']}/evidence/{r.json()['id']}", as_=HANDLER, params=JUSTIFY)
    assert r.status_code == 200
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]


def test_a_stored_row_with_a_bad_name_and_media_type_still_downloads_safely(
    api: Api, sync_engine: Engine
) -> None:
    case = to_execution(api)
    file_id = upload(api, case["id"], HANDLER, b"records")
    with sync_engine.begin() as conn:  # a row stored before upload checked these
        conn.execute(
            text("UPDATE evidence_files SET name = :n, media_type = :m WHERE id = :id"),
            {
                "n": '../../etc/"pass\r\nwd;.pdf',
                "m": "text/plain\r\nSet-Cookie: a=b",
                "id": file_id,
            },
        )
    r = api.get(f"/v1/cases/{case['id']}/evidence/{file_id}", as_=HANDLER, params=JUSTIFY)
    assert r.status_code == 200, r.text
    assert r.content == b"records"
    assert r.headers["content-type"] == "application/octet-stream"
    assert "set-cookie" not in r.headers
    disposition = r.headers["content-disposition"]
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert "/" not in disposition.split("filename*=")[0]
    assert ".." not in disposition
    assert 'filename="_pass__wd_.pdf"' in disposition
    assert "filename*=UTF-8''_pass__wd_.pdf" in disposition
