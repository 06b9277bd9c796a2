"""What a policy decision reads and what it returns.

A ``Context`` describes one exchange (a message, a forward, or a case event) by its metadata
only. A ``Decision`` is the engine's answer: permit or deny, the reasons, the obligations the
broker must carry out, and the hash of the packs that decided.

Invariants:

- Every class here is a frozen, slotted dataclass: nothing changes after construction.
- No field holds message content. The only free text a ``Context`` carries is restriction text
  that must itself travel with the content (the H3 handling restriction, the conditions
  accepted on a case, the restrictions of forwarded material). Case fields are *names* of
  fields that are present, never their values.
- ``Context``, ``Party``, ``Consent`` and ``Forwarding`` check their field types when they are
  made and raise ``TypeError`` otherwise, so a rule never meets a list where it expects a set.
- ``ATTRIBUTES`` (the only things a rule may read) is derived from these dataclasses, so the
  whitelist is exactly the context's fields: there is no attribute through which a rule could
  reach content. The values rules may compare them with are in ``policies.vocabulary``.
- ``Context.consent_recorded`` is derived, never given: it is true when a consent on record
  from the providing side (``forwarding.original_sender``) names this recipient and this
  purpose.
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Effect = Literal["permit", "deny"]
ObligationKind = Literal[
    "require_approval", "require_consent", "retention", "restriction", "handling_text", "follow_up"
]
OBLIGATION_KINDS: frozenset[str] = frozenset(typing.get_args(ObligationKind))


def _check_str_set(owner: str, name: str, value: object, kind: type[Collection[object]]) -> None:
    if not isinstance(value, kind) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"{owner}.{name} must be a {kind.__name__} of str, got {value!r}")


def _check_fields(obj: object) -> None:
    """Check every field of a dataclass instance against its declared type."""
    owner = type(obj).__name__
    for name, spec in FIELD_SPECS[type(obj)].items():
        value = getattr(obj, name)
        if spec == "str":
            ok = isinstance(value, str)
        elif spec == "opt_str":
            ok = value is None or isinstance(value, str)
        elif spec == "bool":
            ok = isinstance(value, bool)
        elif spec == "set":
            _check_str_set(owner, name, value, frozenset)
            continue
        elif spec == "seq":
            _check_str_set(owner, name, value, tuple)
            continue
        else:  # a nested dataclass, a tuple of them, or an optional one
            ok = _check_nested(spec, value)
        if not ok:
            raise TypeError(f"{owner}.{name} has the wrong type: {value!r}")


def _check_nested(spec: str, value: object) -> bool:
    target, _, shape = spec.partition(":")
    cls = _CLASSES[target]
    if shape == "opt":
        return value is None or isinstance(value, cls)
    if shape == "seq":
        return isinstance(value, tuple) and all(isinstance(item, cls) for item in value)
    return isinstance(value, cls)


@dataclass(frozen=True, slots=True)
class Party:
    """A registered participant as the policy sees it: no keys, no names of people."""

    id: str
    kind: str
    jurisdiction: str
    groups: frozenset[str] = frozenset()
    active: bool = True

    def __post_init__(self) -> None:
        _check_fields(self)


@dataclass(frozen=True, slots=True)
class Consent:
    """A consent on record: ``provider`` allows ``recipient`` to use material for ``purpose``."""

    provider: str
    recipient: str
    purpose: str

    def __post_init__(self) -> None:
        _check_fields(self)


@dataclass(frozen=True, slots=True)
class Forwarding:
    """What is known about material being forwarded onward: where it came from and its terms."""

    original_sender: str
    original_sender_kind: str
    permitted_recipients: frozenset[str] = frozenset()
    permitted_purposes: frozenset[str] = frozenset()
    handling_code: str | None = None
    restrictions: tuple[str, ...] = ()
    original_purpose: str | None = None
    # The case the material was received in, if any, and the records on file in it (P5: an
    # exculpatory disclosure of MLA material needs the notice record, UNTOC art. 18(19)).
    case_type: str | None = None
    case_records: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_fields(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Everything the engine may know about one exchange, without its content.

    Raises:
        TypeError: a field has the wrong type (for example a list where a frozenset belongs).
    """

    sender: Party
    recipient: Party
    message_type: str
    legal_basis: str | None = None
    purpose: str | None = None
    data_categories: frozenset[str] = frozenset()
    data_subject_categories: frozenset[str] = frozenset()
    persons_uncategorised: bool = False
    handling_code: str | None = None
    handling_restriction: str | None = None
    evaluation: str | None = None
    statement_kind: str | None = None
    language: str | None = None
    accepted_languages: frozenset[str] = frozenset()
    urgent: bool = False
    channel: str | None = None
    notified_channels: frozenset[str] = frozenset()
    confidential: bool = False
    has_attachments: bool = False
    case_type: str | None = None
    case_state: str | None = None
    case_event: str | None = None
    case_fields: frozenset[str] = frozenset()
    case_conditions: tuple[str, ...] = ()
    case_records: frozenset[str] = frozenset()
    case_parties: frozenset[str] = frozenset()
    grounds: frozenset[str] = frozenset()
    assistance_types: frozenset[str] = frozenset()
    extraordinary_costs: bool = False
    late_notice: bool = False
    consents: tuple[Consent, ...] = ()
    forwarding: Forwarding | None = None
    treaties: frozenset[str] = frozenset()
    flagged_jurisdiction: bool = False
    assurance_recorded: bool = False
    transfer_basis: str | None = None
    special_category_basis: str | None = None
    consent_recorded: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        _check_fields(self)
        fwd = self.forwarding
        recorded = fwd is not None and any(
            c.provider == fwd.original_sender
            and c.recipient == self.recipient.id
            and c.purpose == self.purpose
            for c in self.consents
        )
        object.__setattr__(self, "consent_recorded", recorded)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a decision came out as it did: the rule, its sentence, and the law it rests on."""

    rule_id: str
    text: str
    citation: str


@dataclass(frozen=True, slots=True)
class Obligation:
    """Something the broker must do or attach if it acts on the decision."""

    kind: ObligationKind
    value: str
    rule_id: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer. ``reasons`` are the deny rules when denied, the permit rules when
    permitted; ``matched`` lists every rule whose condition held, in evaluation order."""

    effect: Effect
    reasons: tuple[Reason, ...]
    obligations: tuple[Obligation, ...]
    pack_hash: str
    matched: tuple[str, ...]

    @property
    def permitted(self) -> bool:
        return self.effect == "permit"

    def to_dict(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "permitted": self.permitted,
            "reasons": [dataclasses.asdict(r) for r in self.reasons],
            "obligations": [dataclasses.asdict(o) for o in self.obligations],
            "pack_hash": self.pack_hash,
            "matched": list(self.matched),
        }


# --- field specs, derived once from the annotations ---------------------------------------

_CLASSES: dict[str, type] = {"Party": Party, "Consent": Consent, "Forwarding": Forwarding}


_SIMPLE_SPECS: dict[object, str] = {
    str: "str",
    bool: "bool",
    frozenset[str]: "set",
    tuple[str, ...]: "seq",
    str | None: "opt_str",
}


def _spec_of(hint: object) -> str:
    """The checking spec of a field type: ``str``, ``opt_str``, ``bool``, ``set``, ``seq``,
    or a nested class name, optionally suffixed ``:opt`` or ``:seq``."""
    if hint in _SIMPLE_SPECS:
        return _SIMPLE_SPECS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        inner, suffix = args[0], ":seq"
    elif origin in (typing.Union, types.UnionType) and len(args) == 2 and args[1] is type(None):
        inner, suffix = args[0], ":opt"
    else:
        inner, suffix = hint, ""
    name = getattr(inner, "__name__", None)
    if name not in _CLASSES:
        raise TypeError(f"unsupported field type {hint!r}")  # pragma: no cover - a coding error
    return f"{name}{suffix}"


def _specs(cls: type) -> dict[str, str]:
    hints = typing.get_type_hints(cls)
    return {f.name: _spec_of(hints[f.name]) for f in dataclasses.fields(cls)}


FIELD_SPECS: dict[type, dict[str, str]] = {
    cls: _specs(cls) for cls in (Party, Consent, Forwarding, Context)
}


# --- the attribute whitelist ------------------------------------------------------------

AttrKind = Literal["str", "bool", "set", "object"]


@dataclass(frozen=True, slots=True)
class Attribute:
    """One context attribute a rule may read.

    ``nullable`` attributes may resolve to ``None`` (an optional field, or any field of an
    absent ``forwarding``).
    """

    path: str
    kind: AttrKind
    nullable: bool
    get: Callable[[Context], Any]


_KINDS: dict[str, tuple[AttrKind, bool]] = {
    "str": ("str", False),
    "opt_str": ("str", True),
    "bool": ("bool", False),
    "set": ("set", False),
    "seq": ("set", False),
}


def _kind_of(spec: str) -> tuple[AttrKind, bool]:
    return _KINDS[spec]


def _optional_getter(outer: str, inner: str) -> Callable[[Context], Any]:
    get_outer = operator.attrgetter(outer)
    get_inner = operator.attrgetter(inner)

    def get(ctx: Context) -> Any:
        obj = get_outer(ctx)
        return None if obj is None else get_inner(obj)

    return get


def _build_attributes() -> dict[str, Attribute]:
    attrs: dict[str, Attribute] = {}
    for name, spec in FIELD_SPECS[Context].items():
        if spec in ("Party", "Forwarding:opt"):
            cls = Party if spec == "Party" else Forwarding
            optional = spec.endswith(":opt")
            if optional:
                attrs[name] = Attribute(name, "object", True, operator.attrgetter(name))
            for inner, inner_spec in FIELD_SPECS[cls].items():
                kind, nullable = _kind_of(inner_spec)
                path = f"{name}.{inner}"
                getter = _optional_getter(name, inner) if optional else operator.attrgetter(path)
                attrs[path] = Attribute(path, kind, nullable or optional, getter)
        elif spec == "Consent:seq":
            # Consents are read through the derived ``consent_recorded`` only.
            continue
        else:
            kind, nullable = _kind_of(spec)
            attrs[name] = Attribute(name, kind, nullable, operator.attrgetter(name))
    return attrs


ATTRIBUTES: Mapping[str, Attribute] = types.MappingProxyType(_build_attributes())
