"""Example work for the development node (``palermo dev --sample``): a few messages and cases
in different states, so that a newcomer's pages are not empty.

Everything is made through the node's own ``/v1`` API with the demo logins, as the demo
people would make it: the sample exercises the same checks, signatures and audit leaves as
real work, and nothing here knows the database.
"""

from __future__ import annotations

from typing import Any

import httpx

SAMPLE_MARKER = "sample-loaded"

# An MLA request that meets UNTOC art. 18(15), in English (which the United States accepts),
# on the Italy-US treaty, through the central authorities, with a transfer basis (the United
# States are outside the Law Enforcement Directive's area).
MLA_REQUEST: dict[str, Any] = {
    "requesting_authority": "Procura della Repubblica di Milano",
    "subject_matter": "Laundering of proceeds of drug trafficking through shell companies",
    "conducting_authority": "Public prosecutor, DDA Milano, proceeding RG 1234/2026",
    "facts_summary": "Funds moved from Milan to accounts in New York between 2024 and 2025.",
    "assistance_sought": "Bank records of two accounts held at a New York bank.",
    "persons_concerned": [
        {"ref": "p1", "category": "suspect", "identity": "M. R.", "nationality": "IT"}
    ],
    "purpose": "criminal_investigation",
    "assistance_types": ["records"],
    "offence": "money laundering",
    "max_penalty_years": 12,
    "legal_basis": "it-us-mlat-1982",
    "language": "en",
    "channel": "central_authority",
    "transfer_basis": "appropriate_safeguards",
}
INTEL: dict[str, Any] = {
    "legal_basis": "UNTOC art. 27",
    "handling": {"code": "H0"},
    "evaluation": "B2",
    "statement_kind": "fact",
}
DISCLOSURE: dict[str, Any] = {
    "facts": "Cash couriers moving funds through Rotterdam to Genoa.",
    "purpose": "money_laundering_analysis",
    "legal_basis": "egmont-principles",
    "permitted_recipients": ["it.fiu"],
    "permitted_purposes": ["money_laundering_analysis"],
}


class SampleError(Exception):
    """The node refused a sample step; the message says which and why."""


class _Node:
    def __init__(self, client: httpx.Client, logins: dict[str, Any]) -> None:
        self.client = client
        self.passwords = {p["login"]: p["password"] for p in logins["people"]}
        self.tokens: dict[str, str] = {}

    def _headers(self, login: str) -> dict[str, str]:
        if login not in self.tokens:
            r = self.client.post(
                "/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": login,
                    "password": self.passwords[login],
                },
            )
            self._check(r, f"sign in as {login}")
            self.tokens[login] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[login]}"}

    @staticmethod
    def _check(r: httpx.Response, what: str) -> None:
        if r.status_code >= 300:
            raise SampleError(f"{what}: {r.status_code} {r.text[:500]}")

    def send(self, login: str, draft: dict[str, Any]) -> str:
        r = self.client.post("/v1/messages", json={"draft": draft}, headers=self._headers(login))
        self._check(r, f"{login} sends {draft['type']} to {draft['recipient']}")
        return str(r.json()["id"])

    def open(self, login: str, workflow: str, counterpart: str, request: dict[str, Any]) -> str:
        body = {"workflow": workflow, "counterpart": counterpart, "request": request}
        r = self.client.post("/v1/cases", json=body, headers=self._headers(login))
        self._check(r, f"{login} opens {workflow} with {counterpart}")
        return str(r.json()["id"])

    def fire(
        self, login: str, case_id: str, event: str, body: dict[str, Any] | None = None
    ) -> None:
        payload: dict[str, Any] = {"event": event}
        if body is not None:
            payload["body"] = body
        r = self.client.post(
            f"/v1/cases/{case_id}/events", json=payload, headers=self._headers(login)
        )
        self._check(r, f"{login} fires {event} on case {case_id}")


def seed_sample(url: str, logins: dict[str, Any]) -> list[str]:
    """Make the sample work on the running node at ``url``; returns a line per thing made."""
    made: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        node = _Node(client, logins)
        node.send(
            "it.officer",
            {
                "type": "intel.message",
                "recipient": "us.central-authority",
                "purpose": "investigation RG 1234/2026",
                "transfer_basis": "appropriate_safeguards",
                "body": {"summary": "Courier seen at Fiumicino with a New York ticket"},
                **INTEL,
            },
        )
        made.append("message: Italy to the United States (intelligence)")
        node.send(
            "de.officer",
            {
                "type": "intel.message",
                "recipient": "it.central-authority",
                "purpose": "investigation 2026/0077 BKA",
                "body": {"summary": "Vessel MARIA LUISA expected in Genoa on 3 December"},
                **INTEL,
            },
        )
        made.append("message: Germany to Italy (intelligence)")

        node.open("it.officer", "mla.request", "us.central-authority", MLA_REQUEST)
        made.append("MLA request, Italy to the United States: draft")
        vetting = node.open("it.officer", "mla.request", "us.central-authority", MLA_REQUEST)
        node.fire("it.officer", vetting, "submit_for_vetting")
        made.append("MLA request: awaiting the supervisor's approval (it.supervisor)")
        sent = node.open("it.officer", "mla.request", "us.central-authority", MLA_REQUEST)
        node.fire("it.officer", sent, "submit_for_vetting")
        node.fire("it.supervisor", sent, "transmit")
        made.append("MLA request: transmitted, awaiting acknowledgement (us.officer)")
        executing = node.open("it.officer", "mla.request", "us.central-authority", MLA_REQUEST)
        node.fire("it.officer", executing, "submit_for_vetting")
        node.fire("it.supervisor", executing, "transmit")
        node.fire("us.officer", executing, "acknowledge")
        node.fire("us.officer", executing, "start_assessment")
        node.fire("us.officer", executing, "accept")
        node.fire(
            "us.officer",
            executing,
            "assign_execution",
            {"executing_authority": "US Attorney, Southern District of New York"},
        )
        made.append("MLA request: in execution in the United States")

        node.open("nl.analyst", "fiu.disclosure", "it.fiu", DISCLOSURE)
        made.append("FIU disclosure, the Netherlands to Italy: draft")
    return made
