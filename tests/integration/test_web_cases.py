"""The case pages through HTTP, as a browser uses them: the list, a new request whose form
comes from the request's schema, its errors, an event refused by a guard with its citation,
the supervisor's approval, evidence in and out, the diagram and the letter of request."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import text as sql

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import (
    REQUESTED,
    mla_request,
    open_case,
    to_execution,
)
from tests.integration.web_helpers import Browser, csrf_of


@pytest.fixture
def browser(api: Api) -> Browser:
    return Browser(api.client)


def _draft_form(**over: str) -> dict[str, str]:
    form = {
        "workflow": "mla.request",
        "counterpart": REQUESTED,
        "requesting_authority": "Procura della Repubblica di Milano",
        "subject_matter": "Laundering of proceeds of drug trafficking",
        "conducting_authority": "Public prosecutor, DDA Milano, RG 1234/2026",
        "facts_summary": "Funds moved from Milan to accounts in New York.",
        "assistance_sought": "Bank records of two accounts held at a New York bank.",
        "persons_concerned.0.ref": "p1",
        "persons_concerned.0.category": "suspect",
        "persons_concerned.0.identity": "M. R.",
        "persons_concerned.0.nationality": "IT",
        "purpose": "criminal_investigation",
        "assistance_types": "records",
        "offence": "money laundering",
        "max_penalty_years": "12",
        "legal_basis": "it-us-mlat-1982",
        "language": "en",
        "channel": "central_authority",
        "transfer_basis": "appropriate_safeguards",
        "deadline": "2027-06-30T12:00",
        "deadline_reason": "hearing on 1 July 2027",
    }
    form.update(over)
    return form


def _case_id(location: str) -> str:
    match = re.match(r"/cases/([0-9a-f-]{36})", location)
    assert match, location
    return match.group(1)


def test_the_new_request_form_comes_from_the_schema(browser: Browser) -> None:
    browser.sign_in("it.officer")
    chooser = browser.get("/cases/new?workflow=mla.request")
    assert chooser.status_code == 200
    assert 'name="counterpart"' in chooser.text
    page = browser.get(f"/cases/new?workflow=mla.request&counterpart={REQUESTED}")
    assert page.status_code == 200
    # Every 18(15) particular is a labelled field with its citation.
    for name, citation in [
        ("requesting_authority", "18(15)(a)"),
        ("subject_matter", "18(15)(b)"),
        ("facts_summary", "18(15)(c)"),
        ("assistance_sought", "18(15)(d)"),
        ("persons_concerned.0.identity", "18(15)(e)"),
        ("purpose", "18(15)(f)"),
    ]:
        field_id = "f-" + name.replace(".", "-").replace("_", "-")
        assert f'name="{name}"' in page.text, name
        assert f'<label for="{field_id}"' in page.text, name
        assert f"UNTOC art. {citation}" in page.text, citation
    # The requested State's languages and channels, from the reference data.
    assert "Languages it accepts" in page.text
    assert "Accepted: en" in page.text
    assert 'name="deadline" value="" type="datetime-local"' in page.text
    assert browser.get("/cases/new?workflow=nope").status_code == 404


def test_form_errors_keep_the_input_and_store_nothing(
    browser: Browser, sync_engine: Engine
) -> None:
    browser.sign_in("it.officer")
    page = f"/cases/new?workflow=mla.request&counterpart={REQUESTED}"
    r = browser.submit(
        page,
        "/cases/new",
        _draft_form(
            max_penalty_years="twelve",
            **{"persons_concerned.0.nationality": "Italian"},
            deadline="soon",
        ),
    )
    assert r.status_code == 422
    assert "There is a problem" in r.text
    assert 'href="#f-max-penalty-years"' in r.text
    assert 'href="#f-deadline"' in r.text
    assert 'value="twelve"' in r.text  # the input is kept
    assert "Bank records of two accounts" in r.text
    assert count_rows(sync_engine, "cases") == 0
    # The model's own checks map to their fields too.
    r = browser.submit(
        page, "/cases/new", _draft_form(**{"persons_concerned.0.nationality": "Italian"})
    )
    assert r.status_code == 422
    assert 'href="#f-persons-concerned-0-nationality"' in r.text
    r = browser.submit(page, "/cases/new", _draft_form(counterpart=""))
    assert r.status_code == 422
    assert 'href="#f-counterpart"' in r.text
    assert count_rows(sync_engine, "cases") == 0


def test_draft_vet_and_approve_by_a_supervisor(browser: Browser, api: Api) -> None:
    browser.sign_in("it.officer")
    page = f"/cases/new?workflow=mla.request&counterpart={REQUESTED}"
    r = browser.submit(page, "/cases/new", _draft_form())
    assert r.status_code == 303, r.text
    case_id = _case_id(r.headers["location"])
    case = api.get(f"/v1/cases/{case_id}", as_="it.officer").json()
    assert case["state"] == "DRAFT"
    assert case["deadline_reason"] == "hearing on 1 July 2027"
    listing = browser.get("/cases").text
    assert f"/cases/{case_id}" in listing
    assert "Draft" in listing
    shown = browser.get(f"/cases/{case_id}").text
    assert f'href="/cases/{case_id}/events/submit_for_vetting"' in shown
    assert "/events/transmit" not in shown  # an officer does not transmit
    r = browser.submit(
        f"/cases/{case_id}/events/submit_for_vetting", f"/cases/{case_id}/events/submit_for_vetting"
    )
    assert r.status_code == 303, r.text

    browser.get("/")  # a new session for the supervisor
    browser.client.cookies.clear()
    browser.sign_in("it.supervisor")
    queue = browser.get("/cases/approvals").text
    assert f"/cases/{case_id}" in queue
    assert "You drafted it" not in queue  # the officer drafted it
    shown = browser.get(f"/cases/{case_id}").text
    assert f'href="/cases/{case_id}/events/transmit"' in shown
    r = browser.submit(f"/cases/{case_id}/events/transmit", f"/cases/{case_id}/events/transmit")
    assert r.status_code == 303, r.text
    after = browser.get(r.headers["location"]).text
    assert "Transmitted" in after
    assert "Verified on acceptance" in after
    assert api.get(f"/v1/cases/{case_id}", as_="us.officer").json()["state"] == "TRANSMITTED"
    assert f"/cases/{case_id}" not in browser.get("/cases/approvals").text


def test_a_guard_refusal_is_shown_with_its_citation(browser: Browser, api: Api) -> None:
    # The supervisor drafts and submits: four eyes forbid them to transmit it themselves.
    case = open_case(api, as_="it.supervisor")
    browser.sign_in("it.supervisor")
    path = f"/cases/{case['id']}/events/submit_for_vetting"
    assert browser.submit(path, path).status_code == 303
    shown = browser.get(f"/cases/{case['id']}").text
    assert "four eyes" in shown
    assert "You drafted it" in browser.get("/cases/approvals").text
    path = f"/cases/{case['id']}/events/transmit"
    r = browser.submit(path, path)
    assert r.status_code == 403
    assert "The event was refused" in r.text
    assert "UNTOC art. 18(13); P1 require_approval" in r.text
    assert "This check is not met: the account that transmits is not one that drafted" in r.text
    browser.client.cookies.set("palermo_lang", "fr")
    fr = browser.submit(path, path)
    assert fr.status_code == 403
    assert "le compte qui transmet n\u2019est pas l\u2019un de ceux qui ont" in fr.text
    assert api.get(f"/v1/cases/{case['id']}", as_="it.supervisor").json()["state"] == "CA_VETTING"


def test_a_body_error_and_a_policy_refusal_are_shown(browser: Browser, api: Api) -> None:
    # A draft without the particulars of 18(15) cannot go to vetting: the packs say why.
    case = open_case(api, request={"language": "en"})
    browser.sign_in("it.officer")
    path = f"/cases/{case['id']}/events/submit_for_vetting"
    r = browser.submit(path, path)
    assert r.status_code == 403
    assert "The event was refused" in r.text
    assert "18(15)" in r.text
    path = f"/cases/{case['id']}/events/withdraw"
    r = browser.submit(path, path, {"reason": ""})
    assert r.status_code == 422
    assert 'href="#f-reason"' in r.text


def _upload(browser: Browser, case_id: str, data: bytes, name: str = "records.pdf") -> Any:
    token = csrf_of(browser.get(f"/cases/{case_id}").text)
    return browser.client.post(
        f"/cases/{case_id}/evidence",
        data={"csrf_token": token},
        files={"file": (name, data, "application/pdf")},
        follow_redirects=False,
    )


def test_evidence_up_and_down_with_its_digest(browser: Browser, api: Api) -> None:
    case = to_execution(api)
    data = b"%PDF-1.7 bank records " * 5000
    digest = hashlib.sha256(data).hexdigest()
    browser.sign_in("us.officer")
    r = _upload(browser, case["id"], data)
    assert r.status_code == 303, r.text
    page = browser.get(r.headers["location"]).text
    assert digest in page
    file_id = api.get(f"/v1/cases/{case['id']}/evidence", as_="us.officer").json()["items"][0]["id"]
    path = f"/cases/{case['id']}/events/complete"
    form = browser.get(path).text
    assert f'value="{file_id}"' in form
    r = browser.submit(path, path, {"evidence": file_id})
    assert r.status_code == 303, r.text

    browser.client.cookies.clear()
    browser.sign_in("it.officer")
    page = browser.get(f"/cases/{case['id']}/evidence/{file_id}")
    assert digest in page.text
    short = browser.submit(page.url.path, page.url.path, {"justification": "why"})
    assert short.status_code == 422
    assert 'href="#justification"' in short.text
    r = browser.submit(
        page.url.path, page.url.path, {"justification": "checking the bank records received"}
    )
    assert r.status_code == 200
    assert r.headers["x-content-sha256"] == digest
    assert hashlib.sha256(r.content).hexdigest() == digest


def test_an_upload_without_the_token_stores_nothing(
    browser: Browser, api: Api, sync_engine: Engine
) -> None:
    case = to_execution(api)
    browser.sign_in("us.officer")
    r = browser.client.post(
        f"/cases/{case['id']}/evidence",
        data={"csrf_token": "forged"},
        files={"file": ("x.pdf", b"data", "application/pdf")},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert count_rows(sync_engine, "evidence_files") == 0


def test_another_participants_case_is_not_found(browser: Browser, api: Api) -> None:
    case = open_case(api)
    browser.sign_in("us.officer")  # the draft is not shared: the requested side sees nothing
    for path in (
        f"/cases/{case['id']}",
        f"/cases/{case['id']}/events/withdraw",
        f"/cases/{case['id']}/letter",
    ):
        assert browser.get(path).status_code == 404, path
    assert f"/cases/{case['id']}" not in browser.get("/cases").text


def test_the_diagram_and_the_letter(browser: Browser, api: Api) -> None:
    case = open_case(api, request=mla_request(urgent=True))
    browser.sign_in("it.officer")
    page = browser.get(f"/cases/{case['id']}").text
    assert 'aria-current="step">Draft' in page
    assert "<script" not in page.split("</head>")[1]
    letter = browser.get(f"/cases/{case['id']}/letter")
    assert letter.status_code == 200
    assert 'name="justification"' in letter.text
    assert "Procura della Repubblica" not in letter.text
    short = browser.get(f"/cases/{case['id']}/letter?justification=why")
    assert short.status_code == 422
    full = browser.get(f"/cases/{case['id']}/letter?justification=preparing+the+hearing+file")
    assert full.status_code == 200
    assert "Request for mutual legal assistance" in full.text
    for text in ("Procura della Repubblica di Milano", "Bank records of two accounts", "M. R."):
        assert text in full.text
    assert "UNTOC art. 18(15)(e)" in full.text


def test_an_upload_without_a_file_is_422_with_an_error_summary(
    browser: Browser, api: Api, sync_engine: Engine
) -> None:
    case = to_execution(api)
    browser.sign_in("us.officer")
    token = csrf_of(browser.get(f"/cases/{case['id']}").text)
    # What a browser sends when no file is chosen: an empty part with an empty file name.
    r = browser.client.post(
        f"/cases/{case['id']}/evidence",
        data={"csrf_token": token},
        files={"file": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert "There is a problem" in r.text
    assert '<a href="#file">Choose a file to upload</a>' in r.text
    assert 'aria-invalid="true"' in r.text
    assert "Timeline of signed events" in r.text  # the case page, not an error page
    # A form without the file part at all is answered the same way.
    r = browser.client.post(
        f"/cases/{case['id']}/evidence",
        data={"csrf_token": token},
        files={"other": ("a.txt", b"x", "text/plain")},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert 'href="#file"' in r.text
    fr = browser.client.post(
        f"/cases/{case['id']}/evidence",
        data={"csrf_token": token},
        files={"file": ("", b"", "application/octet-stream")},
        headers={"accept-language": "fr"},
        follow_redirects=False,
    )
    assert "Choisissez un fichier à téléverser" in fr.text
    assert count_rows(sync_engine, "evidence_files") == 0


def test_an_upload_with_a_bad_media_type_is_422_on_the_case_page(
    browser: Browser, api: Api, sync_engine: Engine
) -> None:
    case = to_execution(api)
    browser.sign_in("us.officer")
    token = csrf_of(browser.get(f"/cases/{case['id']}").text)
    r = browser.client.post(
        f"/cases/{case['id']}/evidence",
        data={"csrf_token": token},
        files={"file": ("records.pdf", b"data", "not a type")},
        follow_redirects=False,
    )
    assert r.status_code == 422
    assert re.search(r"The file(&#39;|&#x27;|')s type cannot be accepted", r.text)
    assert "Timeline of signed events" in r.text
    assert count_rows(sync_engine, "evidence_files") == 0


def _timeline(html: str) -> str:
    match = re.search(r'<table class="table timeline">.*?</table>', html, re.S)
    assert match
    return match.group(0)


def test_the_timeline_names_own_staff_and_only_the_other_sides_participant(
    browser: Browser, api: Api, sync_engine: Engine
) -> None:
    case = to_execution(api)
    with sync_engine.connect() as conn:
        ids: dict[str, str] = {
            str(login): str(i) for login, i in conn.execute(sql("SELECT login, id FROM accounts"))
        }
    browser.sign_in("it.officer")
    mine = _timeline(browser.get(f"/cases/{case['id']}").text)
    # Our own staff by display name; the requested State's actions by its participant only.
    assert "it.supervisor" in mine
    assert "us.central-authority" in mine
    assert "us.officer" not in mine
    assert "us.supervisor" not in mine
    assert all(ids[login] not in mine for login in ("it.supervisor", "us.officer"))

    browser.client.cookies.clear()
    browser.sign_in("us.officer")
    theirs = _timeline(browser.get(f"/cases/{case['id']}").text)
    assert "us.officer" in theirs
    assert "it.central-authority" in theirs
    assert "it.supervisor" not in theirs
    assert "it.officer" not in theirs
    assert all(ids[login] not in theirs for login in ("it.supervisor", "us.officer"))


@pytest.mark.parametrize(
    ("language", "title", "summary", "guard"),
    [
        (
            "fr",
            "Demande d\u2019entraide judiciaire",
            "L\u2019envoi final de preuves part vers l\u2019État requérant.",
            "chacun est haché et signé avec l\u2019événement",
        ),
        (
            "es",
            "Solicitud de asistencia judicial recíproca",
            "Se envía el paquete final de pruebas al Estado requirente.",
            "cada uno se resume (hash) y se firma con el evento",
        ),
    ],
)
def test_workflow_texts_are_translated(
    browser: Browser, api: Api, language: str, title: str, summary: str, guard: str
) -> None:
    case = to_execution(api)
    browser.sign_in("us.officer")
    headers = {"accept-language": language}
    page = browser.get(f"/cases/{case['id']}", headers=headers).text
    assert title in page
    assert summary in page
    assert "The final evidence package goes to the requesting State." not in page
    event = browser.get(f"/cases/{case['id']}/events/complete", headers=headers).text
    assert summary in event
    assert guard in event
    assert "each is hashed and signed with the event" not in event
