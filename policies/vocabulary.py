"""Closed vocabularies: the values a rule may compare some attributes with.

A pack naming a value outside its attribute's vocabulary is refused at load time, so a typo
cannot silently turn a deny rule into one that never fires. Attributes not listed in
``VOCABULARY`` are open (legal bases, purposes, languages, groups) and are
configured by each deployment. These are also the values the broker must put in a
``Context`` for the shipped packs to recognise them (see ``policies/RULES.md``).
"""

from __future__ import annotations

import types
from collections.abc import Mapping

PARTICIPANT_KINDS = frozenset(
    {"central_authority", "fiu", "police", "prosecutor", "customs", "judicial", "oversight"}
)
MESSAGE_TYPES = frozenset(
    {
        "mla.request",
        "mla.event",
        "fiu.disclosure",
        "fiu.request",
        "fiu.response",
        "fiu.consent",
        "fiu.event",
        "fiu.match",
        "fiu.match_result",
        "intel.message",
        # the police information request of Directive (EU) 2023/977 and its events
        "intel.request",
        "intel.response",
        "intel.event",
        "extradition.request",
        "extradition.event",
        "jit.message",
        "jit.event",
        "receipt",
        # the node's own message about a case: a reminder, escalation, review or follow-up
        "notice",
    }
)
CASE_TYPES = frozenset({"mla", "fiu", "extradition", "jit", "intel"})
CASE_EVENTS = frozenset(
    {
        # MLA (domain/MLA.md)
        "submit_for_vetting",
        "return_to_drafter",
        "transmit",
        "acknowledge",
        "start_assessment",
        "request_information",
        "provide_information",
        "open_consultation",
        "offer_conditions",
        "accept_conditions",
        "back_to_assessment",
        "accept",
        "assign_execution",
        "deliver_partial",
        "postpone",
        "resume",
        "complete",
        "refuse",
        "withdraw",
        "confirm_receipt",
        "expire_retention",
        "progress_query",
        "use_extension_request",
        "exculpatory_notice",
        "no_longer_needed",
        "written_confirmation",
        # FIU (domain/FIU.md)
        "submit",
        "process",
        "respond",
        "close",
        "request_consent",
        "grant_consent",
        "refuse_consent",
        "request_feedback",
        "give_feedback",
        # extradition (UNTOC art. 16) and joint investigation teams (art. 19)
        "surrender",
        "request_provisional_arrest",
        "provisional_arrest",
        "submit_for_prosecution",
        "report_prosecution",
        "open_team",
        "exchange",
        "extend_team",
        "close_team",
        "expire_team",
    }
)
CASE_RECORDS = frozenset(
    {
        "consultation",
        "cost_consultation",
        "exculpatory_notice",
        "confidentiality_cannot_be_kept",
        "confidentiality_notice",
        "written_confirmation",
    }
)
CASE_FIELDS = frozenset(
    {
        # 18(15) particulars of an MLA request
        "requesting_authority",
        "subject_matter",
        "conducting_authority",
        "facts_summary",
        "assistance_sought",
        "persons_concerned",
        "purpose",
        # other request and event fields
        "deadline",
        "deadline_reason",
        "reasons",
        "review_date",
        "conditions",
        "question",
        "comments",
        # FIU requests (FATF R.40 INR; Egmont)
        "facts",
        "link_to_country",
        "intended_use",
        # joint investigation teams (UNTOC art. 19)
        "agreement_reference",
        "parties",
        "expiry",
    }
)
GROUNDS = frozenset(
    {
        "nonconformity",  # 18(21)(a)
        "essential_interests",  # 18(21)(b)
        "domestic_law_prohibits",  # 18(21)(c)
        "contrary_to_legal_system",  # 18(21)(d)
        "bank_secrecy",  # never a ground, 18(8)
        "fiscal_matter",  # never the sole ground, 18(22), 16(15)
        "ongoing_investigation",  # postponement, 18(25)
        "nationality",  # refusal to extradite a national, 16(10)
        "dual_criminality",
        "persecution",  # 16(14)
        "ne_bis_in_idem",
        "secrecy",
        "other",
    }
)
ASSISTANCE_TYPES = frozenset(
    {
        "taking_evidence",
        "service_of_documents",
        "search_seizure_freezing",
        "examining_objects_sites",
        "information_evidence_expertise",
        "records",
        "tracing_proceeds",
        "voluntary_appearance",
        "other",
    }
)
HANDLING_CODES = frozenset({"H0", "H1", "H2", "H3"})
EVALUATION_CODES = frozenset(f"{s}{i}" for s in "ABCX" for i in "1234")
STATEMENT_KINDS = frozenset({"fact", "assessment"})
TRANSFER_BASES = frozenset({"adequacy", "appropriate_safeguards", "derogation"})
DATA_SUBJECT_CATEGORIES = frozenset(
    {"suspect", "convicted", "victim", "witness", "contact", "other"}
)
CHANNELS = frozenset({"central_authority", "diplomatic", "direct_judicial", "interpol"})
SPECIAL_DATA_CATEGORIES = frozenset(
    {
        # LED art. 10: processed only where strictly necessary, with appropriate safeguards
        "racial_or_ethnic_origin",
        "political_opinions",
        "religious_or_philosophical_beliefs",
        "trade_union_membership",
        "genetic",
        "biometric",
        "health",
        "sex_life_or_sexual_orientation",
    }
)
DATA_CATEGORIES = SPECIAL_DATA_CATEGORIES | frozenset(
    {
        "personal",  # personal data of any kind (LED art. 3(1))
        "nominal",  # names and identifiers of persons (INTERPOL RPD)
        "identity",
        "contact",
        "financial",
        "transaction",
        "account",
        "communications",
        "location",
        "travel",
        "vehicle",
        "vessel_movement",
        "criminal_record",
        "case_file",
        "statistics",  # aggregate figures, no personal data
        "keyed_filter",  # FIU anonymous matching (FIU.md)
        "match_result",
    }
)
SPECIAL_CATEGORY_BASES = frozenset(
    {
        "authorised_by_law",  # LED art. 10(a)
        "vital_interests",  # LED art. 10(b)
        "manifestly_made_public",  # LED art. 10(c)
    }
)


def canonical_category(text: str) -> str:
    """A data category as the vocabulary spells it: matched without regard to case, with
    spaces and hyphens read as underscores ("Vessel-Movement" is ``vessel_movement``)."""
    return "_".join(text.strip().lower().replace("-", " ").replace("_", " ").split())


VOCABULARY: Mapping[str, frozenset[str]] = types.MappingProxyType(
    {
        "sender.kind": PARTICIPANT_KINDS,
        "recipient.kind": PARTICIPANT_KINDS,
        "forwarding.original_sender_kind": PARTICIPANT_KINDS,
        "message_type": MESSAGE_TYPES,
        "case_type": CASE_TYPES,
        "case_event": CASE_EVENTS,
        "case_records": CASE_RECORDS,
        "forwarding.case_type": CASE_TYPES,
        "forwarding.case_records": CASE_RECORDS,
        "case_fields": CASE_FIELDS,
        "grounds": GROUNDS,
        "assistance_types": ASSISTANCE_TYPES,
        "handling_code": HANDLING_CODES,
        "forwarding.handling_code": HANDLING_CODES,
        "evaluation": EVALUATION_CODES,
        "statement_kind": STATEMENT_KINDS,
        "transfer_basis": TRANSFER_BASES,
        "data_subject_categories": DATA_SUBJECT_CATEGORIES,
        "channel": CHANNELS,
        "notified_channels": CHANNELS,
        "data_categories": DATA_CATEGORIES,
        "special_category_basis": SPECIAL_CATEGORY_BASES,
    }
)
