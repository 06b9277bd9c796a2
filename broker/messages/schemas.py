from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from broker.core.text import Text
from broker.envelopes.seal import EnvelopeSeal


class EnvelopeSignature(BaseModel):
    keyid: str
    sig: str


class EnvelopeRead(BaseModel):
    payloadType: str  # noqa: N815 - the DSSE field name
    payload: str
    signatures: list[EnvelopeSignature]


class SubmitAccepted(BaseModel):
    id: str
    status: str = Field(
        description="accepted; or pending_approval: held until a supervisor of your "
        "participant approves it (a require_approval obligation, e.g. P16.derogation), "
        "see GET /v1/messages/{id}"
    )
    accepted_at: dt.datetime
    envelope: EnvelopeSeal = Field(
        description="the envelope as accepted, without its payload: its type, payload digest "
        "and signatures (yours, then the node's countersignature); the payload is read at "
        "GET /v1/messages/{id}/content, a logged consultation"
    )


class ApprovalRead(BaseModel):
    """Where a held message stands (a ``require_approval`` obligation, e.g. P16.derogation,
    LED art. 38(2)): shown to its sender only."""

    status: str = Field(description="pending, approved or rejected")
    rules: list[str] = Field(description="the rules whose require_approval obligation held it")
    texts: list[str] = Field(description="what those obligations ask the supervisor to do")
    requested_at: dt.datetime
    decided_at: dt.datetime | None = None
    reason: str | None = Field(default=None, description="the reasons of a rejection")


class MessageRead(BaseModel):
    id: str
    type: str
    sender: str
    recipient: str
    case_id: str | None
    in_reply_to: str | None
    status: str
    created_at: dt.datetime
    accepted_at: dt.datetime
    delivered_at: dt.datetime | None
    receipted_at: dt.datetime | None
    legal_basis: str | None
    purpose: str | None
    handling_code: str | None
    urgent: bool = Field(
        default=False,
        description="the payload's urgent flag: relayed before other messages, and "
        "GET /v1/inbox?urgent=true lists only these",
    )
    payload_size: int
    envelope_sha256: str
    policy_hash: str
    policy_rules: list[str]
    retention_until: dt.datetime | None = Field(
        default=None,
        description="when the content is erased (P17; LED art. 4(1)(e), 5): from the policy "
        "decision's retention obligation, else the node's default; a case's messages follow "
        "the case (empty until it ends)",
    )
    erased_at: dt.datetime | None = Field(
        default=None, description="when the content was crypto-shredded; metadata remains"
    )
    receipt: EnvelopeRead | None = None
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    handling_restriction: str | None = Field(
        default=None,
        description="the restriction text of an H3 handling code, shown to every reader (P12)",
    )
    handling_texts: list[str] = Field(
        default_factory=list,
        description="what the policy decisions' handling_text obligations show every reader "
        "(P12), this message's and those of the material it forwards",
    )
    restrictions: list[str] = Field(
        default_factory=list,
        description="every restriction that binds the material and travels with each forward "
        "of it: those the sender declared, the conditions accepted on its case (P9, UNTOC art. "
        "18(26)) and the H3 text (P12)",
    )
    approval: ApprovalRead | None = Field(
        default=None,
        description="to its sender: the approval a require_approval obligation holds it for",
    )


class InboxItem(BaseModel):
    cursor: str
    message: MessageRead


class InboxPage(BaseModel):
    items: list[InboxItem]
    next_cursor: str | None = Field(description="pass as ?cursor= for what follows")


class SentPage(BaseModel):
    items: list[MessageRead]


class ContentRead(BaseModel):
    id: str
    envelope: EnvelopeRead
    payload: dict[str, Any]


class RetentionExtension(BaseModel):
    """A reasoned review that extends a retention (P17): the new deadline and why."""

    model_config = ConfigDict(extra="forbid")

    until: dt.datetime = Field(description="the new deadline, with its time zone")
    reason: str = Field(
        max_length=2000,
        description="the reasons of the review: why the item is still needed for its purpose",
    )


class ExportItem(BaseModel):
    id: str
    type: str
    sender: str
    recipient: str
    accepted_at: dt.datetime
    envelope_sha256: str
    role: str = Field(description="sender or recipient: which sealed copy this is")
    enc_kid: str | None = Field(description="the encryption key the content key is sealed to")
    sealed_key: str | None = Field(
        description="base64 libsodium sealed box of the content key, to enc_kid; null if the "
        "participant had no encryption key when the message was accepted"
    )
    ciphertext: str = Field(
        description="base64 secretbox (nonce first) of the countersigned envelope, under the "
        "content key"
    )


class ExportPage(BaseModel):
    items: list[ExportItem]
    next: str | None = Field(description="give as after= for the next page; null at the end")


class PendingApproval(BaseModel):
    message: MessageRead
    approval: ApprovalRead
    drafted_by_you: bool = Field(
        description="you submitted it: another supervisor must decide (four eyes)"
    )


class ApprovalQueue(BaseModel):
    items: list[PendingApproval]


class ApprovalRejection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(
        min_length=1, max_length=2000, description="why the message must not leave"
    )


class FollowUpRead(BaseModel):
    """A tracked item a ``follow_up`` obligation opened (P5.late, UNTOC art. 18(19);
    P20.national, art. 16(10))."""

    id: str
    participant: str = Field(description="the participant responsible")
    what: str
    rule: str = Field(description="the rule whose follow_up obligation opened it")
    message_id: str | None
    case_id: str | None
    opened_at: dt.datetime
    due_at: dt.datetime
    status: str = Field(description="open or done")
    reminded_at: dt.datetime | None
    done_at: dt.datetime | None


class FollowUpPage(BaseModel):
    items: list[FollowUpRead]
