"""The node's policy over the HTTP API (issue 4, items 2 and 6): the packs it enforces and
their hashes, explaining a context, deployment packs, and the audit of every pack change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from broker.app import create_app
from broker.client import sign
from broker.core.settings import ConfigurationError
from policies.engine import default_policy
from tests.conftest import Api
from tests.integration.messaging_helpers import payload
from tests.integration.test_forward import problem

NATIONAL_PACK = """\
pack: national
title: A national rule (example)
description: Vessel movements are not sent to central authorities (an example rule).
rules:
  - id: NAT.vessels
    title: Vessel movement data is not sent to a central authority.
    citation: Example Act art. 1
    effect: deny
    when:
      all:
        - {attr: data_categories, op: contains, value: vessel_movement}
        - {attr: recipient.kind, op: eq, value: central_authority}
test_defaults:
  sender: {id: de.bka, kind: police}
  recipient: {id: it.central-authority, kind: central_authority}
  message_type: intel.message
  legal_basis: UNTOC art. 27
  purpose: investigation
  handling_code: H0
  evaluation: B2
  statement_kind: fact
tests:
  - name: NAT vessel movements to a central authority are refused
    exercises: NAT
    context: {data_categories: [vessel_movement]}
    expect: {effect: deny, reasons: [NAT.vessels]}
  - name: NAT other data passes
    exercises: NAT
    context: {data_categories: [financial]}
    expect: {effect: permit, reasons: [baseline.permit]}
"""

US_CONTEXT: dict[str, Any] = {
    "sender": {"id": "de.bka", "kind": "police"},
    "recipient": {"id": "us.central-authority", "kind": "central_authority"},
    "message_type": "intel.message",
    "legal_basis": "UNTOC art. 27",
    "purpose": "investigation",
    "handling_code": "H0",
    "evaluation": "B2",
    "statement_kind": "fact",
}


@contextmanager
def node(api: Api, **over: Any) -> Iterator[Api]:
    """The same node (database, secrets) started again with its settings changed by ``over``."""
    settings = api.settings.model_copy(update=over)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, api.world)


def loaded_leaves(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT leaf FROM audit_events WHERE kind = 'policy:loaded' ORDER BY id")
        ).all()
    return [json.loads(bytes(r[0])) for r in rows]


def test_every_authenticated_caller_reads_the_packs_and_their_rules(api: Api) -> None:
    r = api.get("/v1/policy", as_="oversight")
    assert r.status_code == 200, r.text
    body = r.json()
    shipped = default_policy()
    assert body["policy_pack"] == shipped.hash
    assert [p["name"] for p in body["packs"]] == [p.name for p in shipped.packs]
    assert {p["origin"] for p in body["packs"]} == {"shipped"}
    rules = {rule["id"]: rule for p in body["packs"] for rule in p["rules"]}
    assert set(rules) == {rule.id for rule in shipped.rules}
    assert rules["P4.purpose-lock"]["citation"].startswith("UNTOC art. 18(19)")
    assert all(rule["citation"] for rule in rules.values())
    assert all(p["hash"].startswith("sha256:") for p in body["packs"])


def test_the_decision_hash_is_the_hash_the_node_shows(api: Api) -> None:
    key = api.world.keys["de.bka"]
    r = api.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
    shown = api.get("/v1/policy", as_="de.system").json()["policy_pack"]
    status = api.get(f"/v1/messages/{r.json()['id']}", as_="de.system").json()
    assert status["policy_hash"] == shown


def test_explain_shows_which_rules_matched_and_why(api: Api) -> None:
    r = api.post("/v1/policy/explain", as_="it.admin", json=US_CONTEXT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["decision"]["effect"] == "deny"
    assert [x["rule_id"] for x in body["decision"]["reasons"]] == ["P16.basis"]
    assert body["context"]["treaties"]  # filled from the reference data
    matched = {rule["id"]: rule for rule in body["rules"]}
    assert matched["P16.basis"]["matched"] is True
    assert matched["P16.basis"]["when"]["result"] is True
    assert matched["baseline.permit"]["effect"] == "permit"
    with_basis = {**US_CONTEXT, "transfer_basis": "appropriate_safeguards"}
    again = api.post("/v1/policy/explain", as_="it.admin", json=with_basis).json()
    assert again["decision"]["effect"] == "permit"


def test_explain_names_the_bad_field(api: Api) -> None:
    bad = {**US_CONTEXT, "sender": {"id": "de.bka"}}
    r = api.post("/v1/policy/explain", as_="it.admin", json=bad)
    assert problem(r, 422, "schema-violation")["field"] == "sender.kind"
    r = api.post("/v1/policy/explain", as_="it.admin", json={**US_CONTEXT, "colour": "red"})
    assert problem(r, 422, "schema-violation")["field"] == "colour"


def test_a_pack_change_is_audited_once_per_change(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    first = loaded_leaves(sync_engine)
    assert len(first) == 1  # written when this node started
    shown = api.get("/v1/policy", as_="oversight").json()
    assert first[0]["policy_pack"] == shown["policy_pack"]
    assert first[0]["reference_data"] == shown["reference_data"]
    assert first[0]["packs"] == [
        {"name": p["name"], "hash": p["hash"], "origin": "shipped"} for p in shown["packs"]
    ]
    with node(api):
        pass
    assert len(loaded_leaves(sync_engine)) == 1  # the same packs again: nothing to record
    with node(api, policy_disabled="jit") as changed:
        hashes = changed.get("/v1/policy", as_="oversight").json()
    assert "jit" not in [p["name"] for p in hashes["packs"]]
    with node(api, policy_disabled="jit"):
        pass
    after = loaded_leaves(sync_engine)
    assert [leaf["policy_pack"] for leaf in after] == [shown["policy_pack"], hashes["policy_pack"]]
    with node(api):  # switching back is a change too
        pass
    assert len(loaded_leaves(sync_engine)) == 3


def test_a_deployment_pack_is_enforced_and_shown(
    api: Api, sync_engine: Engine, tmp_path: Path
) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "national.yaml").write_text(NATIONAL_PACK)
    key = api.world.keys["de.bka"]
    with node(api, policy_paths=str(packs)) as national_node:
        body = national_node.get("/v1/policy", as_="de.system").json()
        national = [p for p in body["packs"] if p["name"] == "national"]
        assert national
        assert national[0]["origin"] == "deployment"
        assert national[0]["rules"][0]["citation"] == "Example Act art. 1"
        r = national_node.post("/v1/messages", as_="de.system", json=sign(key, payload(key)))
        denied = problem(r, 403, "policy-denied")
        assert [x["rule"] for x in denied["reasons"]] == ["NAT.vessels"]
        assert denied["policy_pack"] == body["policy_pack"]
        other = payload(key, data_categories=["financial"])
        accepted = national_node.post("/v1/messages", as_="de.system", json=sign(key, other))
        assert accepted.status_code == 202
    recorded = {p["name"]: p for p in loaded_leaves(sync_engine)[-1]["packs"]}
    assert recorded["national"] == {
        "name": "national",
        "hash": national[0]["hash"],
        "origin": "deployment",
    }


def test_a_node_does_not_start_on_a_bad_pack(api: Api, tmp_path: Path) -> None:
    bad = tmp_path / "national.yaml"
    bad.write_text(NATIONAL_PACK.replace("op: contains", "op: resembles"))
    with pytest.raises(ConfigurationError) as caught:
        create_app(api.settings.model_copy(update={"policy_paths": str(bad)}))
    message = str(caught.value)
    assert str(bad) in message
    assert "NAT.vessels" in message
    assert "op" in message
    with pytest.raises(ConfigurationError, match="not a shipped pack"):
        create_app(api.settings.model_copy(update={"policy_disabled": "nonesuch"}))
    with pytest.raises(ConfigurationError, match="does not exist"):
        create_app(api.settings.model_copy(update={"policy_paths": str(tmp_path / "missing")}))
