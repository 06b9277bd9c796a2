"""The functions behind `palermo policy check|test|explain`, and the bench entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from policies.bench import run
from policies.cli import ContextError, explain, format_results, run_tests
from policies.engine import default_policy, load_policy
from policies.packs import PACKS_DIR


def test_run_tests_passes_on_the_shipped_packs() -> None:
    results = run_tests()
    assert results
    assert all(r.passed for r in results), [r.detail for r in results if not r.passed]
    table = format_results(results)
    assert table.splitlines()[0].split() == ["result", "pack", "test", "effect", "reasons"]
    assert table.endswith(f"{len(results)} tests, {len(results)} passed, 0 failed")


def test_a_wrong_expectation_fails_and_says_why(tmp_path: Path) -> None:
    doc = yaml.safe_load((PACKS_DIR / "baseline.yaml").read_text(encoding="utf-8"))
    doc["tests"][0]["expect"] = {"effect": "deny", "reasons": ["baseline.permit"]}
    doc["tests"][1]["expect"]["obligations"] = [{"kind": "retention", "value": "P1Y"}]
    (tmp_path / "baseline.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    results = run_tests(load_policy([tmp_path]))
    failed = [r for r in results if not r.passed]
    assert [r.name for r in failed] == [doc["tests"][0]["name"], doc["tests"][1]["name"]]
    assert failed[0].detail == "effect permit, expected deny"
    assert "obligations [], expected [('retention', 'P1Y')]" in failed[1].detail
    table = format_results(results)
    assert f"FAIL baseline: {failed[0].name}: effect permit, expected deny" in table
    assert table.endswith(f"{len(results)} tests, {len(results) - 2} passed, 2 failed")


def test_explain_reports_the_decision_and_the_matching_rules() -> None:
    out = explain(
        {
            "sender": {"id": "it.police", "kind": "police"},
            "recipient": {"id": "us.fbi", "kind": "police"},
            "message_type": "receipt",
            "legal_basis": "untoc",
            "purpose": "criminal_investigation",
        }
    )
    assert out["decision"]["effect"] == "permit"
    assert out["decision"]["pack_hash"] == default_policy().hash
    assert out["rules_evaluated"] == len(default_policy().rules)
    # a receipt is not a transfer, so no P16 rule holds; only the baseline permit does
    assert [(r["id"], r["matched"]) for r in out["rules"]] == [("baseline.permit", True)]


def test_explain_traces_each_step() -> None:
    out = explain(
        {
            "sender": {"id": "it.police", "kind": "police"},
            "recipient": {"id": "us.fbi", "kind": "police"},
            "message_type": "intel.message",
            "legal_basis": "untoc",
            "purpose": "criminal_investigation",
            "handling_code": "H0",
            "evaluation": "B2",
            "statement_kind": "fact",
        }
    )
    assert out["decision"]["effect"] == "deny"
    assert [r["rule_id"] for r in out["decision"]["reasons"]] == ["P16.basis"]
    rule = next(r for r in out["rules"] if r["id"] == "P16.basis")
    assert rule["matched"] is True
    assert rule["citation"] == "LED arts. 35-38"
    leaf = rule["when"]["children"][1]
    assert leaf == {
        "test": "transfer_basis not_in ['adequacy', 'appropriate_safeguards', 'derogation']",
        "result": True,
    }
    assert out["context"]["recipient"]["jurisdiction"] == "US"


def test_explain_shows_a_rule_its_unless_excused() -> None:
    out = explain(
        {
            "sender": {"id": "it.fiu", "kind": "fiu"},
            "recipient": {"id": "it.carabinieri", "kind": "police"},
            "message_type": "fiu.disclosure",
            "legal_basis": "egmont-principles",
            "purpose": "analysis",
            "forwarding": {"original_sender": "nl.fiu", "original_sender_kind": "fiu"},
            "consents": [
                {"provider": "nl.fiu", "recipient": "it.carabinieri", "purpose": "analysis"}
            ],
        }
    )
    rule = next(r for r in out["rules"] if r["id"] == "P18.named-recipients")
    assert rule["matched"] is False
    assert rule["unless"] == {"test": "consent_recorded is_true", "result": True}
    assert out["decision"]["effect"] == "permit"


def test_explain_refuses_a_bad_context() -> None:
    with pytest.raises(ContextError) as caught:
        explain({"sender": {"id": "it.fiu", "kind": "fiu"}, "recipient": {}, "message_type": "x"})
    assert caught.value.field == "recipient.id"


def test_bench_run_returns_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    figures = run(500)
    assert figures["decisions"] == 500
    assert figures["rules"] == len(default_policy().rules)
    assert 0 < figures["permits"] < 500
    assert "decisions/s" in capsys.readouterr().out
    with pytest.raises(ValueError, match="positive"):
        run(0)
