"""One error tree, mapped to RFC 9457 ``application/problem+json``.

Every ``PalermoError`` has a stable ``slug`` (its problem ``type`` is
``urn:palermo:problem:<slug>``), an HTTP status and a title; ``detail`` says what is wrong
with this request, and ``extra`` carries machine-readable members (the failing field, the
policy reasons). A 500 is a bug: only ``PalermoError`` and request validation become 4xx.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:palermo:problem:"


class PalermoError(Exception):
    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class MalformedJSON(PalermoError):
    slug, title = "malformed-json", "The request body is not valid JSON"


class SchemaViolation(PalermoError):
    status, slug, title = 422, "schema-violation", "The request does not match the schema"


class CaseEventOutsideCase(SchemaViolation):
    """A message of a type only the case services send, or naming a case, came through a
    door that cannot check the sender is a party of that case (issue 14 item 5)."""

    status, slug, title = 422, "case-event-outside-case", "A case event goes through its case"


class BadBase64(PalermoError):
    slug, title = "bad-base64", "A field is not valid base64"


class BadSignature(PalermoError):
    slug, title = "bad-signature", "A signature does not verify"


class UnknownKey(PalermoError):
    slug, title = "unknown-key", "The signing key is not registered"


class RevokedKey(PalermoError):
    slug, title = "revoked-key", "The signing key is revoked"


class ExpiredKey(PalermoError):
    slug, title = "expired-key", "The signing key is outside its validity window"


class KeyNotSenders(PalermoError):
    slug, title = "key-not-senders", "The signing key does not belong to the sender"


class SenderMismatch(PalermoError):
    status, slug, title = 403, "sender-mismatch", "The sender is not the caller's participant"


class UnknownRecipient(PalermoError):
    status, slug, title = 422, "unknown-recipient", "The recipient is not a registered participant"


class ClockWindow(PalermoError):
    status, slug, title = 422, "clock-window", "created_at is outside the accepted clock window"


class ReplayConflict(PalermoError):
    status, slug, title = 409, "replay-conflict", "This id was already used for other content"


class PayloadTooLarge(PalermoError):
    status, slug, title = 413, "payload-too-large", "The payload exceeds the size limit"


class PolicyDenied(PalermoError):
    status, slug, title = 403, "policy-denied", "Policy does not permit this exchange"


class Unauthenticated(PalermoError):
    status, slug, title = 401, "unauthenticated", "Authentication is required"


class InvalidGrant(PalermoError):
    status, slug, title = 401, "invalid-grant", "The credentials were not accepted"


class Forbidden(PalermoError):
    status, slug, title = 403, "forbidden", "The caller may not do this"


class PasswordChangeRequired(PalermoError):
    status, slug = 403, "password-change-required"
    title = "The password is temporary: change it first"


class NotFound(PalermoError):
    status, slug, title = 404, "not-found", "No such resource"


class Conflict(PalermoError):
    status, slug, title = 409, "conflict", "The request conflicts with the current state"


class InvalidState(PalermoError):
    status, slug, title = 409, "invalid-state", "The resource is not in a state that allows this"


class UnservableContent(PalermoError):
    status, slug, title = 422, "unservable-content", "The stored content cannot be served"


class JustificationRequired(PalermoError):
    status, slug, title = 422, "justification-required", "A justification is required"


class ContentErased(PalermoError):
    """The content was crypto-shredded at the end of its retention (P17): its key and
    ciphertext no longer exist. The problem's ``erased_at`` names the date (UTC, ``Z``)."""

    status, slug, title = 410, "content-erased", "The content was erased at the end of retention"

    def __init__(self, what: str, erased_at: dt.datetime | None, **extra: Any) -> None:
        when = (
            erased_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if erased_at else None
        )
        detail = f"{what} was erased at the end of its retention" + (f" on {when}" if when else "")
        super().__init__(detail, erased_at=when, **extra)


class DirectoryRefused(PalermoError):
    """A peer node's directory failed to verify (signature, node id, serial, freshness, or a
    change to a participant not behind that peer): nothing of it was applied."""

    status, slug, title = 502, "directory-refused", "The peer node's directory was refused"


class PeerUnreachable(PalermoError):
    status, slug, title = 502, "peer-unreachable", "The peer node did not answer"
