"""Guards: the checks of an event that the policy engine cannot make.

The policy packs decide every rule that one exchange shows (18(15) particulars, language,
channel, legal basis, refusal and postponement grounds, consultation on record, conditions):
``broker.cases.policy`` builds their context. What is left here needs the case's own memory or
the node's clock: who drafted the request (four eyes), which evidence files exist and who
uploaded them, whether a review date lies in the future, the order of FIU responses, the
parent of a consent or feedback thread, which refusal of extradition opens the domestic
prosecution, whether a joint investigation team is still within its term.

Each guard is a pure function of ``Facts``; it returns None or says what is wrong.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from broker.cases.workflow import Guard, Side


@dataclass(frozen=True, slots=True)
class EvidenceFacts:
    side: Side
    delivered: bool


@dataclass(frozen=True, slots=True)
class Facts:
    """What a guard may look at: the case as it stands and the event being fired."""

    workflow: str
    case_type: str
    state: str
    event: str
    side: Side
    body: BaseModel
    account_id: str | None
    roles: frozenset[str]
    now: dt.datetime
    drafters: frozenset[str] = frozenset()
    records: frozenset[str] = frozenset()
    initiated_by: str = "written"
    urgent: bool = False
    response_kind: str | None = None
    parent_workflow: str | None = None
    parent_state: str | None = None
    parent_terms: Mapping[str, Any] = field(default_factory=dict)
    # The consents granted through the message door for the parent's material (id,
    # recipient, purpose, valid_until), looked up for a guard that reads them.
    message_consents: tuple[Mapping[str, Any], ...] = ()
    terms: Mapping[str, Any] = field(default_factory=dict)
    evidence: Mapping[str, EvidenceFacts] = field(default_factory=dict)


def _four_eyes(f: Facts) -> str | None:
    if f.account_id in f.drafters:
        return (
            "you drafted or submitted this request: a supervisor of the central authority who "
            "did not draft it must transmit it (four eyes)"
        )
    return None


FOUR_EYES = Guard(
    id="four_eyes",
    text="the account that transmits is not one that drafted or submitted the request",
    citation="UNTOC art. 18(13); P1 require_approval",
    check=_four_eyes,
    status=403,
    excludes_drafters=True,
)


def consultation_reasons(state: str, reasons: frozenset[str], *, citation: str) -> Guard:
    """A consultation opened from ``state`` is on one of ``reasons`` (a table's row names the
    state and the reasons; the guard knows neither)."""

    def check(f: Facts) -> str | None:
        reason = getattr(f.body, "reason", None)
        if f.state == state and reason not in reasons:
            return (
                f"a consultation opened in {state} is on {' or '.join(sorted(reasons))}, "
                f"not on {reason}"
            )
        return None

    return Guard(
        id="execution_consultation",
        text="a consultation opened during execution is on a postponement or on costs",
        citation=citation,
        check=check,
    )


def _review_in_future(f: Facts) -> str | None:
    review = getattr(f.body, "review_date", None)
    if isinstance(review, dt.datetime) and review <= f.now:
        return f"review_date {review.isoformat()} is not in the future"
    return None


REVIEW_IN_FUTURE = Guard(
    id="review_date_future",
    text="a postponement's review date lies in the future",
    citation="UNTOC art. 18(25)",
    check=_review_in_future,
)


def _valid_until_future(f: Facts) -> str | None:
    until = getattr(f.body, "valid_until", None)
    if isinstance(until, dt.datetime) and until <= f.now:
        return f"valid_until {until.isoformat()} is not in the future"
    return None


VALID_UNTIL_FUTURE = Guard(
    id="valid_until_future",
    text="a consent granted until a date is granted until a date in the future",
    citation="UNTOC art. 18(19); Egmont Principles",
    check=_valid_until_future,
)


def _evidence_ready(f: Facts) -> str | None:
    ids = [str(i) for i in getattr(f.body, "evidence", [])]
    if len(set(ids)) != len(ids):
        return "an evidence file is listed twice"
    for file_id in ids:
        found = f.evidence.get(file_id)
        if found is None:
            return f"no evidence file {file_id} was uploaded to this case"
        if found.side != f.side:
            return f"evidence file {file_id} was uploaded by the other side"
        if found.delivered:
            return f"evidence file {file_id} was already delivered"
    return None


EVIDENCE_READY = Guard(
    id="evidence_ready",
    text="the evidence package lists files uploaded to the case by this side and not yet "
    "delivered; each is hashed and signed with the event",
    citation="UNTOC art. 18(3), 18(17)",
    check=_evidence_ready,
)


def _response_open(f: Facts) -> str | None:
    if f.response_kind in ("full", "negative"):
        return f"a {f.response_kind} response was already given: the request is answered"
    return None


RESPONSE_OPEN = Guard(
    id="response_open",
    text="further responses follow only an interim or partial one",
    citation="Egmont Principles for Information Exchange",
    check=_response_open,
    status=409,
    of_case=True,
)


def _written_confirmation(f: Facts) -> str | None:
    if f.initiated_by == "written":
        return "this request was made in writing: there is nothing to confirm"
    if "written_confirmation" in f.records:
        return "the written confirmation is already on record"
    return None


CONFIRMS_ORAL = Guard(
    id="confirms_oral_request",
    text="written confirmation follows a request first made orally or through INTERPOL",
    citation="UNTOC art. 18(14)",
    check=_written_confirmation,
    status=409,
    of_case=True,
)


def _parent(*workflows: str) -> Guard:
    allowed = frozenset(workflows)

    def check(f: Facts) -> str | None:
        if f.parent_workflow not in allowed:
            return f"this thread opens under a {' or '.join(sorted(allowed))} case"
        return None

    return Guard(
        id="parent_case",
        text=f"opens under a case of workflow {', '.join(sorted(allowed))}, once shared",
        citation="UNTOC art. 18(19); Egmont Principles",
        check=check,
        on_parent=True,
    )


CONSENT_UNDER_MLA = _parent("mla.request")
CONSENT_UNDER_FIU = _parent("fiu.request", "fiu.disclosure")
FEEDBACK_UNDER_FIU = _parent("fiu.request", "fiu.disclosure")


def _consent_needed(f: Facts) -> str | None:
    recipient = getattr(f.body, "recipient", None)
    purpose = getattr(f.body, "purpose", None)
    named = f.parent_terms.get("permitted_recipients", [])
    purposes = f.parent_terms.get("permitted_purposes", [])
    if recipient in named and purpose in purposes:
        return (
            f"{recipient} is named for {purpose} in the terms the material came with: consent "
            "is presumed, there is nothing to ask"
        )
    for granted in f.parent_terms.get("consents", []):
        until = granted.get("valid_until")
        if (granted.get("recipient"), granted.get("purpose")) == (recipient, purpose) and (
            until is None or f.now < dt.datetime.fromisoformat(until)
        ):
            return (
                f"a consent for {recipient} for {purpose} is on record (thread "
                f"{granted.get('thread')}): there is nothing to ask"
            )
    for granted in f.message_consents:
        until = granted.get("valid_until")
        if (granted.get("recipient"), granted.get("purpose")) == (recipient, purpose) and (
            until is None or f.now < dt.datetime.fromisoformat(until)
        ):
            return (
                f"a consent for {recipient} for {purpose} is on record (consent "
                f"{granted.get('consent')}, asked by message): there is nothing to ask"
            )
    return None


CONSENT_NEEDED = Guard(
    id="consent_needed",
    text="consent is asked only for a recipient or purpose the material's terms do not name",
    citation="Egmont Principles; P18",
    check=_consent_needed,
    status=409,
    reads_message_consents=True,
)


# --- extradition (UNTOC art. 16) ------------------------------------------------------------


def _urgent(f: Facts) -> str | None:
    if not f.urgent:
        return "the request is not marked urgent: provisional arrest is asked only when urgent"
    if "provisional_arrest_requested" in f.records:
        return "provisional arrest was already asked"
    return None


URGENT_ARREST = Guard(
    id="urgent_provisional_arrest",
    text="provisional arrest is asked once, for a request marked urgent",
    citation="UNTOC art. 16(9)",
    check=_urgent,
    status=409,
    of_case=True,
)


def _arrest_asked(f: Facts) -> str | None:
    if "provisional_arrest_requested" not in f.records:
        return "the requesting State has not asked for provisional arrest"
    if "provisional_arrest" in f.records:
        return "the provisional arrest is already on record"
    return None


ARREST_ASKED = Guard(
    id="provisional_arrest_asked",
    text="a provisional arrest follows the requesting State's request for one",
    citation="UNTOC art. 16(9)",
    check=_arrest_asked,
    status=409,
    of_case=True,
)


def _grounds(f: Facts) -> frozenset[str]:
    return frozenset(getattr(f.body, "grounds", None) or ())


def _not_national(f: Facts) -> str | None:
    if "nationality" in _grounds(f):
        return (
            "a refusal on the ground of nationality is refuse_national: it opens the domestic "
            "prosecution the requested State owes"
        )
    return None


NOT_NATIONAL = Guard(
    id="refusal_not_national",
    text="a refusal on the ground of nationality goes through refuse_national",
    citation="UNTOC art. 16(10)",
    check=_not_national,
)


def _national(f: Facts) -> str | None:
    if "nationality" not in _grounds(f):
        return "refuse_national is a refusal on the ground of nationality: name that ground"
    return None


NATIONAL_GROUND = Guard(
    id="refusal_national",
    text="the refusal names the ground of nationality",
    citation="UNTOC art. 16(10)",
    check=_national,
)


# --- joint investigation teams (UNTOC art. 19) ----------------------------------------------


def _when(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _in_term(f: Facts) -> str | None:
    expiry = _when(f.terms.get("expiry"))
    if expiry is None or expiry <= f.now:
        shown = expiry.isoformat() if expiry else "an unknown date"
        return f"the team's agreement expired at {shown}: the team exchanges nothing more"
    return None


TEAM_IN_TERM = Guard(
    id="team_in_term",
    text="the team's agreement has not expired",
    citation="UNTOC art. 19",
    check=_in_term,
    status=409,
    of_case=True,
)


def _expiry_ahead(f: Facts) -> str | None:
    agreement = getattr(f.body, "request", None)
    expiry = _when(getattr(agreement, "expiry", None) or f.terms.get("expiry"))
    if expiry is not None and expiry <= f.now:
        return f"the agreement's expiry {expiry.isoformat()} is not in the future"
    return None


EXPIRY_AHEAD = Guard(
    id="expiry_future",
    text="the team opens with an expiry in the future",
    citation="UNTOC art. 19",
    check=_expiry_ahead,
)


def _extends(f: Facts) -> str | None:
    new = _when(getattr(f.body, "expiry", None))
    current = _when(f.terms.get("expiry"))
    if new is not None and current is not None and new <= current:
        return f"expiry {new.isoformat()} is not later than the current {current.isoformat()}"
    return None


EXTENDS_TERM = Guard(
    id="extends_term",
    text="an extension moves the expiry later",
    citation="UNTOC art. 19",
    check=_extends,
)
