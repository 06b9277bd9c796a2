"""Pack validation: each kind of mistake is refused with the file, rule id and field named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.cli import check
from policies.engine import PolicySet, load_policy
from policies.packs import PACKS_DIR, PackError, load_pack, pack_from_mapping


def valid_pack() -> dict[str, Any]:
    return {
        "pack": "sample",
        "title": "Sample pack",
        "rules": [
            {
                "id": "S1.permit",
                "title": "Police may talk to police.",
                "citation": "Sample Act art. 1",
                "effect": "permit",
                "when": {
                    "all": [
                        {"attr": "sender.kind", "op": "eq", "value": "police"},
                        {"attr": "recipient.kind", "op": "in", "value": ["police", "customs"]},
                    ]
                },
            },
            {
                "id": "S1.deny",
                "title": "Nothing goes out without a purpose.",
                "citation": "Sample Act art. 2",
                "effect": "deny",
                "when": {"attr": "purpose", "op": "absent"},
                "obligations": [{"kind": "restriction", "value": "state a purpose"}],
            },
        ],
        "tests": [
            {
                "name": "police to police",
                "exercises": "S1",
                "context": {
                    "sender": {"id": "it.police", "kind": "police"},
                    "recipient": {"id": "nl.police", "kind": "police"},
                    "message_type": "intel.message",
                    "purpose": "x",
                },
                "expect": {"effect": "permit", "reasons": ["S1.permit"]},
            }
        ],
    }


def write(tmp_path: Path, doc: dict[str, Any], name: str = "sample.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, doc: dict[str, Any]) -> PackError:
    path = write(tmp_path, doc)
    with pytest.raises(PackError) as caught:
        load_pack(path)
    assert caught.value.file == str(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_the_sample_pack_is_valid(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, valid_pack()))
    assert [r.id for r in pack.rules] == ["S1.permit", "S1.deny"]
    assert len(pack.tests) == 1


def test_unknown_attribute(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][0]["when"]["all"][0]["attr"] = "sender.name"
    err = refused(tmp_path, doc)
    assert err.rule_id == "S1.permit"
    assert err.field == "when.all[0].attr"
    assert "unknown attribute 'sender.name'" in str(err)


def test_content_is_not_an_attribute(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "body", "op": "present"}
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "when.attr")


def test_consents_are_read_only_through_consent_recorded(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "consents", "op": "present"}
    assert "unknown attribute 'consents'" in str(refused(tmp_path, doc))


def test_bad_operator_name(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][0]["when"]["all"][1]["op"] = "equals"
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.permit", "when.all[1].op")
    assert "'equals'" in err.problems[0].message


def test_operator_that_does_not_fit_the_attribute(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "urgent", "op": "contains", "value": "x"}
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "when.op")
    assert "does not apply to bool urgent" in str(err)


@pytest.mark.parametrize(
    ("test", "fragment"),
    [
        ({"attr": "urgent", "op": "eq", "value": "yes"}, "needs a bool"),
        ({"attr": "sender.kind", "op": "eq", "value": True}, "needs a str"),
        ({"attr": "sender.kind", "op": "in", "value": "police"}, "non-empty list of strings"),
        ({"attr": "case_records", "op": "contains", "value": ["consultation"]}, "needs a string"),
    ],
)
def test_wrong_value_type(tmp_path: Path, test: dict[str, Any], fragment: str) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = test
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "when.value")
    assert fragment in str(err)


def test_value_outside_the_vocabulary(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "case_records", "op": "contains", "value": "consulation"}
    err = refused(tmp_path, doc)
    assert err.field == "when.value"
    assert "'consulation' is not a known value of case_records" in str(err)


def test_ref_of_the_wrong_kind(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "recipient.id", "op": "in", "ref": "purpose"}
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "when.ref")


def test_value_and_ref_together(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "purpose", "op": "eq", "value": "x", "ref": "legal_basis"}
    assert "exactly one of 'value' or 'ref'" in str(refused(tmp_path, doc))


def test_unary_operator_with_a_value(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "purpose", "op": "absent", "value": "x"}
    assert "takes no value" in str(refused(tmp_path, doc))


def test_combinator_mixed_with_a_test(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["unless"] = {"not": {"attr": "urgent", "op": "is_true"}, "attr": "urgent"}
    err = refused(tmp_path, doc)
    assert err.rule_id == "S1.deny"


def test_missing_citation(tmp_path: Path) -> None:
    doc = valid_pack()
    del doc["rules"][1]["citation"]
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "citation")
    assert "is required" in str(err)


def test_empty_citation(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["citation"] = ""
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "citation")


def test_bad_effect(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][0]["effect"] = "allow"
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.permit", "effect")


def test_duplicate_rule_id_in_one_pack(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"].append(copy.deepcopy(doc["rules"][1]))
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "id")
    assert "duplicate rule id" in str(err)


def test_duplicate_rule_id_across_packs(tmp_path: Path) -> None:
    write(tmp_path, valid_pack(), "sample.yaml")
    other = valid_pack()
    other["pack"] = "other"
    other_path = write(tmp_path, other, "other.yaml")
    with pytest.raises(PackError) as caught:
        load_policy([tmp_path])
    assert {p.rule_id for p in caught.value.problems} == {"S1.permit", "S1.deny"}
    # the second pack in name order is the one reported (other < sample)
    assert all(p.file == str(tmp_path / "sample.yaml") for p in caught.value.problems)
    assert str(other_path) in str(caught.value)


def test_duplicate_rule_id_with_a_shipped_pack(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["id"] = "baseline.permit"
    write(tmp_path, doc)
    with pytest.raises(PackError) as caught:
        load_policy([PACKS_DIR, tmp_path])
    assert caught.value.rule_id == "baseline.permit"


def test_obligation_with_an_unknown_ref(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["obligations"] = [{"kind": "restriction", "ref": "case_condition"}]
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "obligations[0].ref")


def test_obligation_of_an_unknown_kind(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["obligations"] = [{"kind": "notify_press", "value": "x"}]
    err = refused(tmp_path, doc)
    assert (err.rule_id, err.field) == ("S1.deny", "obligations[0].kind")


def test_obligation_ref_to_a_flag(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["obligations"] = [{"kind": "restriction", "ref": "urgent"}]
    assert "not text" in str(refused(tmp_path, doc))


def test_unknown_rule_key(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][0]["priority"] = 3
    err = refused(tmp_path, doc)
    assert err.rule_id == "S1.permit"
    assert "priority" in str(err)


def test_test_case_with_a_bad_context(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["tests"][0]["context"]["urgent"] = "yes"
    err = refused(tmp_path, doc)
    assert err.problems[0].test == "police to police"
    assert err.field == "context.urgent"


def test_test_case_exercising_an_unknown_group(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["tests"][0]["exercises"] = "S9"
    err = refused(tmp_path, doc)
    assert err.field == "exercises"
    assert "'S9' is not a rule group here" in str(err)


def test_test_case_without_expectation(tmp_path: Path) -> None:
    doc = valid_pack()
    del doc["tests"][0]["expect"]
    err = refused(tmp_path, doc)
    assert (err.problems[0].test, err.field) == ("police to police", "expect")


def test_pack_name_must_match_file_name(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["pack"] = "different"
    err = refused(tmp_path, doc)
    assert err.field == "pack"


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("rules: [\n", encoding="utf-8")
    with pytest.raises(PackError, match="not valid YAML"):
        load_pack(path)


def test_not_a_mapping() -> None:
    with pytest.raises(PackError, match="mapping at the top level"):
        pack_from_mapping(["rules"])


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][0]["when"]["all"][0]["attr"] = "sender.name"
    doc["rules"][1]["when"] = {"attr": "urgent", "op": "contains", "value": "x"}
    err = refused(tmp_path, doc)
    assert [(p.rule_id, p.field) for p in err.problems] == [
        ("S1.permit", "when.all[0].attr"),
        ("S1.deny", "when.op"),
    ]


def test_check_returns_one_line_per_problem(tmp_path: Path) -> None:
    doc = valid_pack()
    del doc["rules"][0]["citation"]
    doc["rules"][1]["when"] = {"attr": "sender.name", "op": "present"}
    path = write(tmp_path, doc)
    assert check([path]) == [
        f"{path}: rule S1.permit: citation: is required",
    ]
    doc["rules"][0]["citation"] = "x Act"
    write(tmp_path, doc)
    lines = check([path])
    assert len(lines) == 1
    assert lines[0].startswith(f"{path}: rule S1.deny: when.attr: unknown attribute")


def test_check_reports_a_group_the_reference_data_lacks(tmp_path: Path) -> None:
    doc = valid_pack()
    doc["rules"][1]["when"] = {"attr": "recipient.groups", "op": "contains", "value": "eu-member"}
    path = write(tmp_path, doc)
    lines = check([path])
    assert len(lines) == 1
    assert "rule S1.deny" in lines[0]
    assert "group 'eu-member' is not defined" in lines[0]


def test_check_reports_a_missing_path(tmp_path: Path) -> None:
    assert check([tmp_path / "nope.yaml"]) == [
        f"{tmp_path / 'nope.yaml'}: no such file or directory"
    ]


def test_check_passes_the_shipped_packs() -> None:
    assert check() == []


def test_two_packs_with_one_name_are_refused(tmp_path: Path) -> None:
    pack = load_pack(write(tmp_path, valid_pack()))
    with pytest.raises(PackError, match="duplicate pack name"):
        PolicySet([pack, pack])
