"""docs/workflows.md is generated from the tables and kept current."""

from __future__ import annotations

from pathlib import Path

from broker.cases import docs
from broker.cases.tables import WORKFLOWS

DOC = Path(__file__).resolve().parents[3] / "docs" / "workflows.md"


def test_the_workflow_docs_are_current() -> None:
    assert docs.main(["--check", str(DOC)]) == 0, "run: python -m broker.cases.docs > " + str(DOC)


def test_a_stale_doc_is_reported(tmp_path: Path) -> None:
    stale = tmp_path / "workflows.md"
    stale.write_text("old\n")
    assert docs.main(["--check", str(stale)]) == 1


def test_every_workflow_has_its_diagram_table_and_rules() -> None:
    text = docs.render()
    assert text.count("```mermaid") == len(WORKFLOWS)
    for wf in WORKFLOWS.values():
        assert f"(`{wf.name}`)" in text
        for t in wf.transitions:
            assert f"| `{t.event}` |" in text
    mla = WORKFLOWS["mla.request"]
    refuse = mla.transition("CONSULTATION", "refuse")
    assert refuse is not None
    assert docs.policy_rules(mla, refuse) == [
        "P7.ground",
        "P7.bank-secrecy",
        "P7.fiscal-alone",
        "P7.reasons",
        "P7.consultation",
    ]
    submit = WORKFLOWS["fiu.request"].transition("DRAFT", "submit")
    assert submit is not None
    assert docs.policy_rules(WORKFLOWS["fiu.request"], submit) == ["FIU.request-fields"]
