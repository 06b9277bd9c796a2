"""``palermo policy check|test|explain|rules`` and the ``policy:loaded`` leaf of ``palermo init``
(issue 4, items 2 and 6), run as an operator runs them."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from broker.cli import main
from broker.core.db import make_sync_engine
from tests.integration import test_cli
from tests.integration.test_policy import NATIONAL_PACK, US_CONTEXT

node_env = test_cli.node_env  # a fresh node: empty database, empty data directory
DOCS = Path(__file__).resolve().parents[2] / "docs" / "policies.md"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PALERMO_"):
            monkeypatch.delenv(key)


def palermo(
    capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv))
    finally:
        sys.stdin = sys.__stdin__
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.usefixtures("clean_env")
def test_check_lists_the_packs_and_names_every_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = palermo(capsys, "policy", "check")
    assert code == 0
    assert "ok: 9 packs" in out
    assert "transfers          shipped    sha256:" in out
    bad = tmp_path / "national.yaml"
    bad.write_text(NATIONAL_PACK.replace("    citation: Example Act art. 1\n", ""))
    code, out, _ = palermo(capsys, "policy", "check", str(bad))
    assert code == 1
    assert f"{bad}: rule NAT.vessels" in out
    assert "citation" in out
    good = tmp_path / "national.yaml"
    good.write_text(NATIONAL_PACK)
    code, out, _ = palermo(capsys, "policy", "check", str(good))
    assert (code, out.strip()) == (0, "ok: the node's packs and 1 more path(s) load together")


@pytest.mark.usefixtures("clean_env")
def test_test_runs_every_pack_case_including_deployment_packs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _ = palermo(capsys, "policy", "test")
    assert code == 0
    summary = out.strip().splitlines()[-1]
    assert summary.endswith("0 failed")
    shipped = int(summary.split()[0])
    (tmp_path / "national.yaml").write_text(NATIONAL_PACK)
    monkeypatch.setenv("PALERMO_POLICY_PATHS", str(tmp_path))
    code, out, _ = palermo(capsys, "policy", "test")
    assert code == 0
    rows = [line.split(None, 2) for line in out.splitlines()]
    assert ["ok", "national", "NAT vessel"] in [
        [*row[:2], row[2][:10]] for row in rows if len(row) == 3
    ]
    assert out.strip().splitlines()[-1].startswith(f"{shipped + 2} tests")
    # A national test that the packs contradict fails the run.
    wrong = NATIONAL_PACK.replace(
        "expect: {effect: deny, reasons: [NAT.vessels]}",
        "expect: {effect: permit, reasons: [baseline.permit]}",
    )
    (tmp_path / "national.yaml").write_text(wrong)
    code, out, _ = palermo(capsys, "policy", "test")
    assert code == 1
    assert "FAIL national: NAT vessel movements to a central authority are refused" in out


@pytest.mark.usefixtures("clean_env")
def test_explain_reads_a_context_from_stdin_or_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = palermo(capsys, "policy", "explain", stdin=json.dumps(US_CONTEXT))
    assert code == 0
    assert out.startswith("decision: deny")
    assert "P16.basis: A transfer of data outside" in out
    assert "[LED arts. 35-38]" in out
    assert "- P16.basis (deny, matched)" in out
    path = tmp_path / "context.json"
    path.write_text(json.dumps({**US_CONTEXT, "transfer_basis": "appropriate_safeguards"}))
    code, out, _ = palermo(capsys, "policy", "explain", str(path), "--json")
    assert code == 0
    assert json.loads(out)["decision"]["effect"] == "permit"
    code, _, err = palermo(capsys, "policy", "explain", stdin='{"sender": {"id": "de.bka"}}')
    assert code == 1
    assert "sender.kind" in err
    code, _, err = palermo(capsys, "policy", "explain", str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read" in err


@pytest.mark.usefixtures("clean_env")
def test_docs_list_every_shipped_rule_with_its_citation(capsys: pytest.CaptureFixture[str]) -> None:
    code, table, _ = palermo(capsys, "policy", "rules", "--markdown")
    assert code == 0
    assert table.strip() in DOCS.read_text(encoding="utf-8"), (
        "docs/policies.md is out of date: paste `palermo policy rules --markdown` into it"
    )


def test_init_records_the_policy_set_once_per_change(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, node_env: Path
) -> None:
    code, out, _ = palermo(capsys, "init")
    assert code == 0
    assert "policy: sha256:" in out
    palermo(capsys, "init")
    monkeypatch.setenv("PALERMO_POLICY_DISABLED", "jit,extradition")
    palermo(capsys, "init")
    engine = make_sync_engine(os.environ["PALERMO_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            leaves = [
                json.loads(bytes(row[0]))
                for row in conn.execute(
                    text("SELECT leaf FROM audit_events WHERE kind = 'policy:loaded' ORDER BY id")
                )
            ]
    finally:
        engine.dispose()
    assert len(leaves) == 2
    assert leaves[0]["actor"]["account"].startswith("cli:")
    names = [[p["name"] for p in leaf["packs"]] for leaf in leaves]
    assert "jit" in names[0]
    assert "jit" not in names[1]
    assert "extradition" not in names[1]
    assert leaves[0]["policy_pack"] != leaves[1]["policy_pack"]
