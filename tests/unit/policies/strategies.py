"""Hypothesis strategies for policy contexts and rule conditions.

Values are drawn from the vocabularies and from the ids the shipped packs mention, so that
generated contexts reach the rules (not just the default deny) and generated conditions
compile.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from policies.model import ATTRIBUTES, Consent, Context, Forwarding, Party
from policies.reference import groups_for, load_reference_data, with_reference_data
from policies.vocabulary import (
    CASE_EVENTS,
    CASE_FIELDS,
    CASE_RECORDS,
    CASE_TYPES,
    CHANNELS,
    DATA_SUBJECT_CATEGORIES,
    GROUNDS,
    HANDLING_CODES,
    MESSAGE_TYPES,
    PARTICIPANT_KINDS,
    STATEMENT_KINDS,
    TRANSFER_BASES,
    VOCABULARY,
)

JURISDICTIONS = ("IT", "NL", "DE", "US", "FR", "ES", "GB", "CH", "XA", "ZZ")
PARTICIPANTS = tuple(
    f"{j.lower()}.{slug}" for j in JURISDICTIONS for slug in ("central-authority", "fiu", "police")
)
PURPOSES = (
    "criminal_investigation",
    "prosecution",
    "exculpatory_disclosure",
    "tax_audit",
    "money_laundering_analysis",
    "judicial_proceedings",
)
LEGAL_BASES = ("untoc", "reciprocity", "eu-eio", "it-us-mlat-1982", "egmont-principles")
DATA_CATEGORIES = ("personal", "nominal", "financial", "keyed_filter", "match_result")
GROUP_NAMES = tuple(sorted(load_reference_data().groups))
OPEN_STRINGS = (*PURPOSES, *LEGAL_BASES, *DATA_CATEGORIES, *PARTICIPANTS, "en", "it", "EXPIRED")


def _optional(values: tuple[str, ...] | frozenset[str]) -> st.SearchStrategy[str | None]:
    return st.none() | st.sampled_from(sorted(values))


def _subset(values: tuple[str, ...] | frozenset[str]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(sorted(values)), max_size=4)


_party_ids = st.sampled_from(PARTICIPANTS)
_kinds = st.sampled_from(sorted(PARTICIPANT_KINDS))
# mostly active, so that the rules behind the baseline are reached
_active = st.sampled_from((True, True, True, False))


def _party(pid: str, kind: str, active: bool) -> Party:
    jurisdiction = pid.split(".", maxsplit=1)[0].upper()
    return Party(pid, kind, jurisdiction, groups_for(jurisdiction), active)


def parties() -> st.SearchStrategy[Party]:
    return st.builds(_party, _party_ids, _kinds, _active)


forwardings: st.SearchStrategy[Forwarding | None] = st.none() | st.builds(
    Forwarding,
    original_sender=st.sampled_from(PARTICIPANTS),
    original_sender_kind=st.sampled_from(sorted(PARTICIPANT_KINDS)),
    permitted_recipients=_subset(PARTICIPANTS),
    permitted_purposes=_subset(PURPOSES),
    handling_code=_optional(HANDLING_CODES),
    restrictions=st.lists(st.sampled_from(("no onward transfer", "H3 text")), max_size=2).map(
        tuple
    ),
    original_purpose=_optional(PURPOSES),
)

consents = st.builds(
    Consent,
    provider=st.sampled_from(PARTICIPANTS),
    recipient=st.sampled_from(PARTICIPANTS),
    purpose=st.sampled_from(PURPOSES),
)


_context_fields: dict[str, st.SearchStrategy[Any]] = {
    "message_type": st.sampled_from(sorted(MESSAGE_TYPES)),
    "legal_basis": _optional(LEGAL_BASES),
    "purpose": _optional(PURPOSES),
    "data_categories": _subset(DATA_CATEGORIES),
    "data_subject_categories": _subset(DATA_SUBJECT_CATEGORIES | {"bystander"}),
    "persons_uncategorised": st.booleans(),
    "handling_code": _optional(HANDLING_CODES | {"H9"}),
    "handling_restriction": st.none() | st.just("do not contact the subject"),
    "evaluation": _optional(("A1", "B2", "X4", "E7")),
    "statement_kind": _optional(STATEMENT_KINDS),
    "language": _optional(("en", "it", "nl", "de")),
    "urgent": st.booleans(),
    "channel": _optional(CHANNELS),
    "confidential": st.booleans(),
    "has_attachments": st.booleans(),
    "case_type": _optional(CASE_TYPES),
    "case_state": _optional(("CONSULTATION", "EXPIRED", "ACTIVE")),
    "case_event": _optional(CASE_EVENTS),
    "case_fields": _subset(CASE_FIELDS),
    "case_conditions": st.lists(st.sampled_from(("cond A", "cond B")), max_size=2).map(tuple),
    "case_records": _subset(CASE_RECORDS),
    "case_parties": _subset(PARTICIPANTS),
    "grounds": _subset(GROUNDS),
    "extraordinary_costs": st.booleans(),
    "late_notice": st.booleans(),
    "consents": st.lists(consents, max_size=2).map(tuple),
    "forwarding": forwardings,
    "assurance_recorded": st.booleans(),
    "transfer_basis": _optional(TRANSFER_BASES),
}

contexts_strategy: st.SearchStrategy[Context] = st.builds(
    Context, sender=parties(), recipient=parties(), **_context_fields
).map(with_reference_data)


def contexts() -> st.SearchStrategy[Context]:
    """Contexts whose State-dependent fields come from the shipped reference data."""
    return contexts_strategy


def _values_for(path: str) -> tuple[str, ...]:
    if path in VOCABULARY:
        return tuple(sorted(VOCABULARY[path]))
    if path.endswith(".groups"):
        return GROUP_NAMES
    return OPEN_STRINGS


@st.composite
def leaves(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(sorted(ATTRIBUTES)))
    attr = ATTRIBUTES[path]
    ops = {
        "str": ["eq", "ne", "in", "not_in", "present", "absent"],
        "bool": ["eq", "ne", "is_true", "is_false"],
        "set": ["present", "absent", "contains", "not_contains", "subset_of", "intersects"],
        "object": ["present", "absent"],
    }[attr.kind]
    op = draw(st.sampled_from(ops))
    if op in ("present", "absent", "is_true", "is_false"):
        return {"attr": path, "op": op}
    if attr.kind == "bool":
        return {"attr": path, "op": op, "value": draw(st.booleans())}
    values = _values_for(path)
    if op in ("eq", "ne", "contains", "not_contains"):
        return {"attr": path, "op": op, "value": draw(st.sampled_from(values))}
    chosen = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))
    return {"attr": path, "op": op, "value": chosen}


conditions: st.SearchStrategy[dict[str, Any]] = st.recursive(
    leaves(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        children.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)


def single_rule_pack(
    rule_id: str, effect: str, when: dict[str, Any], name: str = "zz_extra"
) -> dict[str, Any]:
    """A pack document holding one rule and no tests."""
    return {
        "pack": name,
        "title": "Generated pack",
        "rules": [
            {
                "id": rule_id,
                "title": "A generated rule for property tests.",
                "citation": "test",
                "effect": effect,
                "when": when,
            }
        ],
        "tests": [],
    }
