"""Messages: ingress, reading and receipts of signed messages.

What other domains may call is the names below (``__all__``); everything else in the package
is its own. ``accept`` is the one path by which a message is accepted, ``sign_and_accept``
the one way a domain sends a message of its own, and ``held_message`` the one answer to "the
delivered message the caller holds".
"""

from broker.messages.approvals import HELD, approve, pending_approvals, reject
from broker.messages.checking import check_draft
from broker.messages.erasure import backfill_deadlines, erase_due_messages, erase_messages
from broker.messages.export import SealedItem, export_sealed
from broker.messages.followups import (
    claim_reminder,
    complete_follow_up,
    due_follow_ups,
    list_follow_ups,
    open_follow_ups,
    record_reminder_leaf,
)
from broker.messages.ingress import (
    CASE_ONLY_TYPES,
    Accepted,
    AcceptRequest,
    FactsMemo,
    Refused,
    accept,
    load_body,
    sign_and_accept,
    submit,
)
from broker.messages.issuing import NOTICE_TYPE, issue_notice
from broker.messages.keys import encryption_keys
from broker.messages.lists import (
    STATUSES,
    MessageFilter,
    filtered_inbox,
    filtered_sent,
    message_types,
    urgent_unread,
)
from broker.messages.reading import (
    attempts_of,
    countersigned_envelope,
    erased_error,
    get_message_for,
    held_message,
    list_inbox,
    list_sent,
    open_envelope,
    read_content,
    shown_for,
    terms_of,
)
from broker.messages.receipts import RECEIPT_TYPE, receipt_payload, record_receipt, verify_receipt
from broker.messages.review import (
    ReviewTerms,
    checked_extension,
    extend_message_retention,
    review_opens,
)
from broker.messages.sealing import SealPass, seal_missing_copies
from broker.messages.signing import Signed, parse_payload, verified_submission

__all__ = [
    "CASE_ONLY_TYPES",
    "HELD",
    "NOTICE_TYPE",
    "RECEIPT_TYPE",
    "STATUSES",
    "AcceptRequest",
    "Accepted",
    "FactsMemo",
    "MessageFilter",
    "Refused",
    "ReviewTerms",
    "SealPass",
    "SealedItem",
    "Signed",
    "accept",
    "approve",
    "attempts_of",
    "backfill_deadlines",
    "check_draft",
    "checked_extension",
    "claim_reminder",
    "complete_follow_up",
    "countersigned_envelope",
    "due_follow_ups",
    "encryption_keys",
    "erase_due_messages",
    "erase_messages",
    "erased_error",
    "export_sealed",
    "extend_message_retention",
    "filtered_inbox",
    "filtered_sent",
    "get_message_for",
    "held_message",
    "issue_notice",
    "list_follow_ups",
    "list_inbox",
    "list_sent",
    "load_body",
    "message_types",
    "open_envelope",
    "open_follow_ups",
    "parse_payload",
    "pending_approvals",
    "read_content",
    "receipt_payload",
    "record_receipt",
    "record_reminder_leaf",
    "reject",
    "review_opens",
    "seal_missing_copies",
    "shown_for",
    "sign_and_accept",
    "submit",
    "terms_of",
    "urgent_unread",
    "verified_submission",
    "verify_receipt",
]
