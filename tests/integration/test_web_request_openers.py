"""Every request workflow opened from the browser by the people whose participant may open it
(MLA.md; POLICY-RULES.md P20, P21): an extradition request between central authorities (UNTOC
art. 16), a joint investigation team between law-enforcement and judicial authorities (UNTOC
art. 19), a police information request between police participants (Directive (EU) 2023/977
art. 4). Each form comes from its request model; a bad form is a 422 page naming the field,
with nothing stored; a workflow the participant may not open is neither offered nor accepted
on a direct POST."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import Engine

from tests.conftest import Api, count_rows
from tests.integration.test_case_helpers import (
    FakeClock,
    fire,
    get_case,
    register_partner,
    use_clock,
)
from tests.integration.web_helpers import Browser, csrf_of

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
POLICE, ASKED = "it.police", "nl.police"
INVESTIGATOR, SPOC = "it.investigator", "nl.spoc"
MEMBERS = ["it.central-authority", "de.bka", "us.central-authority"]


@pytest.fixture
def browser(api: Api) -> Browser:
    register_partner(api, POLICE, "police", {INVESTIGATOR: "officer"})
    register_partner(api, ASKED, "police", {SPOC: "officer"})
    use_clock(api, FakeClock(START))
    return Browser(api.client)


def _extradition(**over: str) -> dict[str, str]:
    form = {
        "workflow": "extradition.request",
        "counterpart": "us.central-authority",
        "requesting_authority": "Procura della Repubblica di Milano",
        "persons_concerned.0.ref": "p1",
        "persons_concerned.0.category": "suspect",
        "persons_concerned.0.identity": "M. R.",
        "persons_concerned.0.nationality": "US",
        "offence": "participation in an organized criminal group (UNTOC art. 5)",
        "max_penalty_years": "10",
        "facts_summary": "Laundering of proceeds through shell companies in 2024-2025.",
        "warrant_reference": "OCC 1234/2026 GIP Milano",
        "purpose": "prosecution",
        "legal_basis": "untoc",
        "language": "en",
        "channel": "central_authority",
        "transfer_basis": "appropriate_safeguards",
    }
    form.update(over)
    return form


def _team(**over: str) -> dict[str, str]:
    form = {
        "workflow": "jit.team",
        "counterpart": "de.bka",
        "agreement_reference": "JIT-IT-DE-US-2026/01",
        "parties": "\n".join(MEMBERS),
        "expiry": (START + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "subject_matter": "Cocaine trafficking through Gioia Tauro and Hamburg.",
        "purpose": "joint_investigation",
        "legal_basis": "untoc",
        "transfer_basis": "appropriate_safeguards",
    }
    form.update(over)
    return form


def _intel(**over: str) -> dict[str, str]:
    form = {
        "workflow": "intel.request",
        "counterpart": ASKED,
        "facts": "A lorry registered in Rotterdam carried 300 kg of cocaine to Genoa.",
        "reasons": "The driver's associates are sought before the next shipment.",
        "information_sought": "The registered keeper of the lorry NL-12-ABC.",
        "purpose": "prevention_of_crime",
        "legal_basis": "eu-2023-977",
        "urgent": "1",
        "information_access": "direct",
        "subjects.0.ref": "p1",
        "subjects.0.category": "suspect",
        "subjects.0.identity": "the keeper",
    }
    form.update(over)
    return form


def _open(browser: Browser, form: dict[str, str]) -> str:
    page = f"/cases/new?workflow={form['workflow']}&counterpart={form['counterpart']}"
    r = browser.submit(page, "/cases/new", form)
    assert r.status_code == 303, r.text
    match = re.match(r"/cases/([0-9a-f-]{36})\?opened=1$", r.headers["location"])
    assert match, r.headers["location"]
    return match.group(1)


def _offered(html: str) -> list[str]:
    return re.findall(r'<option value="([^"]+)"', html)


def _links(html: str) -> list[str]:
    return re.findall(r'href="/cases/new\?workflow=([a-z.]+)"', html)


# --- what each kind is offered ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "offered"),
    [
        # A central authority: MLA, extradition and a joint team; no police request, no FIU's.
        ("it.officer", ["mla.request", "extradition.request", "jit.team"]),
        # A police participant keeps its MLA request and gains the team and its own request.
        (INVESTIGATOR, ["mla.request", "jit.team", "intel.request"]),
        # An FIU asks FIUs only (FATF R.40).
        ("nl.officer", ["fiu.request"]),
    ],
)
def test_each_kind_is_offered_what_it_may_open_on_cases_and_home(
    browser: Browser, login: str, offered: list[str]
) -> None:
    browser.sign_in(login)
    assert _links(browser.get("/cases").text) == offered
    assert _links(browser.get("/").text) == offered
    for name in offered:
        assert browser.get(f"/cases/new?workflow={name}").status_code == 200, name


def test_each_chooser_offers_the_kinds_its_workflow_addresses(browser: Browser) -> None:
    browser.sign_in("it.officer")
    extradition = browser.get("/cases/new?workflow=extradition.request")
    assert "New extradition request" in extradition.text
    assert "Requested State's central authority" in extradition.text
    assert _offered(extradition.text) == ["us.central-authority"]  # central authorities only
    team = browser.get("/cases/new?workflow=jit.team").text
    assert "New joint investigation team" in team
    # Police and central authorities (the suspended one is refused on opening, as for MLA);
    # neither the FIU nor the supervisory authority.
    assert _offered(team) == ["de.bka", "fr.suspended", POLICE, ASKED, "us.central-authority"]
    browser.client.cookies.clear()
    browser.sign_in(INVESTIGATOR)
    intel = browser.get("/cases/new?workflow=intel.request").text
    assert "New police information request" in intel
    assert _offered(intel) == ["de.bka", "fr.suspended", ASKED]  # police participants only


def test_the_forms_are_labelled_in_english_french_and_spanish(browser: Browser) -> None:
    browser.sign_in("it.officer")
    page = "/cases/new?workflow=jit.team&counterpart=de.bka"
    for lang, words in [
        ("en", ["Reference of the agreement", "Members of the team", "End of the team"]),
        ("fr", ["Référence de l'accord", "Membres de l'équipe", "Fin de l'équipe"]),
        ("es", ["Referencia del acuerdo", "Miembros del equipo", "Fin del equipo"]),
    ]:
        browser.client.cookies.set("palermo_lang", lang)
        html = browser.get(page).text
        for word in words:
            assert word in html, (lang, word)
    browser.client.cookies.set("palermo_lang", "en")
    team = browser.get(page).text
    # The members one per line, the end a date and time: both typed with the keyboard.
    assert re.search(r'<textarea id="f-parties" name="parties"', team)
    assert 'name="expiry" value="" type="datetime-local"' in team
    extradition = browser.get(
        "/cases/new?workflow=extradition.request&counterpart=us.central-authority"
    ).text
    assert "Arrest warrant or enforceable judgment" in extradition
    assert "UNTOC art. 16(1)" in extradition  # the offence's citation, from the schema
    assert "Languages it accepts" in extradition
    browser.client.cookies.clear()
    browser.sign_in(INVESTIGATOR)
    intel = browser.get(f"/cases/new?workflow=intel.request&counterpart={ASKED}").text
    assert "Access to the information" in intel
    assert re.search(r'<select id="f-information-access" name="information_access"', intel)
    assert "Languages it accepts" not in intel


# --- opened from the web ----------------------------------------------------------------------


def test_a_central_authority_opens_an_extradition_request(api: Api, browser: Browser) -> None:
    browser.sign_in("it.officer")
    case_id = _open(browser, _extradition())
    case = get_case(api, case_id, "it.officer")
    assert (case["workflow"], case["state"]) == ("extradition.request", "DRAFT")
    assert (case["requesting"], case["counterpart"]) == (
        "it.central-authority",
        "us.central-authority",
    )
    assert {"requesting_authority", "persons_concerned", "facts_summary"} <= set(case["fields"])
    assert case["purpose"] == "prosecution"


def test_a_joint_team_opened_from_the_web_carries_its_agreement(api: Api, browser: Browser) -> None:
    browser.sign_in("it.officer")
    case_id = _open(browser, _team())
    case = get_case(api, case_id, "it.officer")
    assert (case["workflow"], case["counterpart"]) == ("jit.team", "de.bka")
    assert {"agreement_reference", "parties", "expiry"} <= set(case["fields"])
    draft = browser.get(f"/cases/{case_id}").text
    assert ">Open the team<" in draft  # the table's events by their names, not their ids
    assert "End of the team" in draft
    # P21.agreement opens the team only with its reference, members and expiry: the members
    # typed one per line and the end typed as a date and time were read as such.
    opened = fire(api, case_id, "open_team", "it.officer")
    assert opened["case"]["state"] == "ACTIVE"


def test_a_police_officer_opens_a_police_information_request(api: Api, browser: Browser) -> None:
    browser.sign_in(INVESTIGATOR)
    case_id = _open(browser, _intel())
    case = get_case(api, case_id, INVESTIGATOR)
    assert (case["workflow"], case["requesting"], case["counterpart"]) == (
        "intel.request",
        POLICE,
        ASKED,
    )
    assert (case["urgent"], case["information_access"]) == (True, "direct")


def test_a_police_officer_keeps_the_mla_request(api: Api, browser: Browser) -> None:
    browser.sign_in(INVESTIGATOR)
    form = {
        "workflow": "mla.request",
        "counterpart": "us.central-authority",
        "requesting_authority": "Polizia di Stato, Squadra Mobile di Genova",
    }
    case_id = _open(browser, form)
    case = get_case(api, case_id, INVESTIGATOR)
    assert (case["workflow"], case["counterpart"]) == ("mla.request", "us.central-authority")


# --- bad forms --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "form", "field", "kept"),
    [
        ("it.officer", _extradition(max_penalty_years="ten"), "f-max-penalty-years", "ten"),
        (
            "it.officer",
            _extradition(**{"persons_concerned.0.nationality": "American"}),
            "f-persons-concerned-0-nationality",
            "OCC 1234/2026 GIP Milano",
        ),
        ("it.officer", _team(expiry="next month"), "f-expiry", "next month"),
        ("it.officer", _team(parties="de.bka\nnot a participant"), "f-parties", "de.bka"),
        # An urgent request says how the information is accessible: it picks the time limit.
        (
            INVESTIGATOR,
            _intel(information_access=""),
            "f-information-access",
            "NL-12-ABC",
        ),
        (INVESTIGATOR, _intel(information_access="sometimes"), "f-information-access", "300 kg"),
    ],
)
def test_a_bad_form_names_the_field_and_stores_nothing(
    browser: Browser, sync_engine: Engine, login: str, form: dict[str, str], field: str, kept: str
) -> None:
    browser.sign_in(login)
    page = f"/cases/new?workflow={form['workflow']}&counterpart={form['counterpart']}"
    r = browser.submit(page, "/cases/new", form)
    assert r.status_code == 422, r.text
    assert "There is a problem" in r.text
    assert f'href="#{field}"' in r.text
    assert kept in r.text  # the input is kept
    assert count_rows(sync_engine, "cases") == 0


def test_a_counterpart_of_a_kind_not_addressed_is_refused(
    browser: Browser, sync_engine: Engine
) -> None:
    browser.sign_in("it.officer")
    page = "/cases/new?workflow=extradition.request&counterpart=us.central-authority"
    r = browser.submit(page, "/cases/new", _extradition(counterpart="de.bka"))  # police
    assert r.status_code == 422
    assert 'href="#f-counterpart"' in r.text
    assert "Choose one of the participants offered" in r.text
    r = browser.submit(page, "/cases/new", _team(counterpart="nl.fiu"))
    assert r.status_code == 422
    assert 'href="#f-counterpart"' in r.text
    assert count_rows(sync_engine, "cases") == 0


# --- not offered, not accepted ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "form"),
    [
        (INVESTIGATOR, _extradition(counterpart="us.central-authority")),  # police: no art. 16
        ("nl.officer", _extradition(counterpart="us.central-authority")),
        ("nl.officer", _team(counterpart="de.bka")),  # an FIU is no member of a team
        ("it.officer", _intel(counterpart="de.bka")),  # a central authority: no 2023/977
        ("nl.officer", _intel(counterpart="de.bka")),
    ],
)
def test_a_workflow_not_offered_is_not_accepted(
    browser: Browser, sync_engine: Engine, login: str, form: dict[str, str]
) -> None:
    browser.sign_in(login)
    workflow = form["workflow"]
    assert workflow not in _links(browser.get("/cases").text)
    assert workflow not in _links(browser.get("/").text)
    assert browser.get(f"/cases/new?workflow={workflow}").status_code == 404
    # A direct POST, with a valid CSRF token from a page the person may open.
    token = csrf_of(browser.get("/cases").text)
    r = browser.client.post("/cases/new", data={**form, "csrf_token": token})
    assert r.status_code == 404
    assert count_rows(sync_engine, "cases") == 0
