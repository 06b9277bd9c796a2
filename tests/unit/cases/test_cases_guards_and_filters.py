"""Guards as pure functions; keyed filters of anonymous matching; statistics helpers."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from broker.cases import bodies, guards
from broker.cases.statistics import percentile, spans
from broker.cases.workflow import Side
from broker.core import crypto
from broker.fiu.filters import (
    keyed_filter,
    keyed_filters,
    matches,
    new_exchange_key,
    normalise,
    open_exchange_key,
    seal_exchange_key,
)

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def facts(body: BaseModel | None = None, **over: object) -> guards.Facts:
    values: dict[str, object] = {
        "workflow": "mla.request",
        "case_type": "mla",
        "state": "CA_VETTING",
        "event": "transmit",
        "side": Side.REQUESTING,
        "body": body or bodies.NoBody(),
        "account_id": "acc-2",
        "roles": frozenset({"supervisor"}),
        "now": NOW,
    }
    values.update(over)
    return guards.Facts(**values)  # type: ignore[arg-type]


def test_four_eyes() -> None:
    assert guards.FOUR_EYES.failure(facts(drafters=frozenset({"acc-1"}))) is None
    failure = guards.FOUR_EYES.failure(facts(drafters=frozenset({"acc-1", "acc-2"})))
    assert failure is not None
    assert (failure.guard, failure.status) == ("four_eyes", 403)
    assert failure.error().status == 403


def test_evidence_ready() -> None:
    mine, theirs, sent = (str(uuid.uuid4()) for _ in range(3))
    known = {
        mine: guards.EvidenceFacts(Side.REQUESTED, delivered=False),
        theirs: guards.EvidenceFacts(Side.REQUESTING, delivered=False),
        sent: guards.EvidenceFacts(Side.REQUESTED, delivered=True),
    }

    def check(*ids: str) -> str | None:
        body = bodies.Evidence(evidence=[uuid.UUID(i) for i in ids])
        f = facts(body, side=Side.REQUESTED, evidence=known)
        return guards.EVIDENCE_READY.check(f)

    assert check(mine) is None
    assert check(mine, mine) == "an evidence file is listed twice"
    assert "uploaded by the other side" in str(check(theirs))
    assert "already delivered" in str(check(sent))
    assert "no evidence file" in str(check(str(uuid.uuid4())))


def test_review_date_and_response_order_and_confirmation() -> None:
    later = bodies.Postpone(review_date=NOW + dt.timedelta(days=1))
    earlier = bodies.Postpone(review_date=NOW - dt.timedelta(days=1))
    assert guards.REVIEW_IN_FUTURE.check(facts(later)) is None
    assert guards.REVIEW_IN_FUTURE.check(facts(earlier)) is not None
    assert guards.RESPONSE_OPEN.check(facts(response_kind="interim")) is None
    assert guards.RESPONSE_OPEN.check(facts(response_kind="negative")) is not None
    assert guards.CONFIRMS_ORAL.check(facts(initiated_by="oral")) is None
    assert guards.CONFIRMS_ORAL.check(facts(initiated_by="written")) is not None
    on_file = frozenset({"written_confirmation"})
    assert guards.CONFIRMS_ORAL.check(facts(initiated_by="oral", records=on_file)) is not None


def test_consent_is_asked_only_beyond_the_named_terms() -> None:
    terms = {"permitted_recipients": ["it.fiu"], "permitted_purposes": ["analysis"]}
    named = bodies.RequestConsent(recipient="it.fiu", purpose="analysis")
    other = bodies.RequestConsent(recipient="it.police", purpose="analysis")
    assert guards.CONSENT_NEEDED.check(facts(named, parent_terms=terms)) is not None
    assert guards.CONSENT_NEEDED.check(facts(other, parent_terms=terms)) is None
    assert guards.CONSENT_UNDER_MLA.check(facts(parent_workflow="mla.request")) is None
    assert guards.CONSENT_UNDER_MLA.check(facts(parent_workflow="fiu.request")) is not None


def test_filled_fields_count_only_what_is_there() -> None:
    request = bodies.MlaRequest(requesting_authority="  ", subject_matter="x", persons_concerned=[])
    assert bodies.filled_fields(request) == {"subject_matter"}
    with pytest.raises(ValueError, match="not a known ground"):
        bodies.Refuse.model_validate({"grounds": ["dislike"]})


# --- keyed filters ---------------------------------------------------------------------------


def test_both_sides_normalise_alike() -> None:
    assert normalise("  Mário   ROSSI ") == normalise("mario rossi") == "mario rossi"
    assert normalise("ACME Trading S.r.l.") == "acme trading s r l"


@given(st.text(min_size=1, max_size=40))
def test_a_filter_depends_on_the_key(subject: str) -> None:
    a, b = new_exchange_key(), new_exchange_key()
    assert keyed_filter(a, subject) == keyed_filter(a, subject)
    assert keyed_filter(a, subject) != keyed_filter(b, subject)
    assert len(keyed_filter(a, subject)) == 64


def test_matching_and_the_sealed_key() -> None:
    key = new_exchange_key()
    sent = keyed_filters(key, ["Mario Rossi", "ACME Srl"])
    assert matches(key, sent, ["mario  rossi"])
    assert not matches(key, sent, ["Giulia Bianchi"])
    assert not matches(new_exchange_key(), sent, ["Mario Rossi"])
    private, public = crypto.generate_box_key()
    assert open_exchange_key(private, seal_exchange_key(public, key)) == key
    with pytest.raises(ValueError, match="16 bytes"):
        keyed_filter(b"short", "x")


# --- statistics -----------------------------------------------------------------------------


def test_nearest_rank_percentiles() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.9) == 5.0
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 0.5), percentile(values, 0.9)) == (5.0, 9.0)


def test_spans_take_the_first_end_after_the_first_start() -> None:
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hour = dt.timedelta(hours=1)
    out = spans(
        [
            ("c1", "mla.request", "transmit", t),
            ("c1", "mla.request", "acknowledge", t + 5 * hour),
            ("c1", "mla.request", "accept", t + 9 * hour),
            ("c2", "mla.request", "transmit", t),
        ]
    )
    assert out["mla.transmission_to_receipt"] == [5.0]
    assert out["mla.receipt_to_decision"] == [4.0]
    assert out["mla.decision_to_execution"] == []
