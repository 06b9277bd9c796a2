"""Contexts from JSON-like mappings, and back.

``context_from_dict`` is how a context reaches the engine from outside Python: a pack's test
case, ``palermo policy explain`` input, a JSON file. It checks every key and type and says
exactly which field is wrong.

Invariants:

- Unknown keys are refused, at every level (context, party, forwarding, consent), so a
  misspelt field cannot be silently ignored.
- The derived field ``consent_recorded`` cannot be given.
- Fields that depend on the two States (``treaties``, ``flagged_jurisdiction``,
  ``accepted_languages``, ``notified_channels``) and a party's ``groups`` and
  ``jurisdiction`` are filled from the reference data when absent, and kept when given.
- ``context_from_dict(context_to_dict(c)) == c`` for every context ``c``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.model import FIELD_SPECS, Consent, Context, Forwarding, Party
from policies.reference import ReferenceData, jurisdiction_of, load_reference_data

_DERIVED = frozenset({"consent_recorded"})


class ContextError(ValueError):
    """A context mapping is malformed. ``field`` is the path of the bad field (``sender.kind``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _convert(spec: str, value: object, where: str) -> object:
    if spec == "str":
        if not isinstance(value, str):
            raise ContextError(where, f"expected a string, got {value!r}")
        return value
    if spec == "opt_str":
        if value is not None and not isinstance(value, str):
            raise ContextError(where, f"expected a string or null, got {value!r}")
        return value
    if spec == "bool":
        if not isinstance(value, bool):
            raise ContextError(where, f"expected true or false, got {value!r}")
        return value
    if spec in ("set", "seq"):
        if not isinstance(value, list | tuple | set | frozenset) or not all(
            isinstance(item, str) for item in value
        ):
            raise ContextError(where, f"expected a list of strings, got {value!r}")
        return frozenset(value) if spec == "set" else tuple(value)
    raise AssertionError(spec)  # pragma: no cover - nested specs are handled by the caller


def _fields(cls: type, data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ContextError(where, f"expected a mapping, got {data!r}")
    specs = FIELD_SPECS[cls]
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = _join(where, str(key))
        if key in _DERIVED:
            raise ContextError(path, "is derived from consents and forwarding; do not give it")
        if key not in specs:
            raise ContextError(path, f"unknown field (known: {', '.join(sorted(specs))})")
        out[key] = _convert(specs[key], value, path)
    return out


def _party(data: object, where: str, ref: ReferenceData) -> Party:
    fields = _fields(Party, data, where)
    for required in ("id", "kind"):
        if required not in fields:
            raise ContextError(_join(where, required), "is required")
    if "jurisdiction" not in fields:
        try:
            fields["jurisdiction"] = jurisdiction_of(fields["id"])
        except ValueError as exc:
            raise ContextError(_join(where, "id"), str(exc)) from exc
    fields.setdefault("groups", ref.groups_for(fields["jurisdiction"]))
    return Party(**fields)


def _forwarding(data: object, where: str) -> Forwarding | None:
    if data is None:
        return None
    fields = _fields(Forwarding, data, where)
    for required in ("original_sender", "original_sender_kind"):
        if required not in fields:
            raise ContextError(_join(where, required), "is required")
    return Forwarding(**fields)


def _consents(data: object, where: str) -> tuple[Consent, ...]:
    if not isinstance(data, list | tuple):
        raise ContextError(where, f"expected a list of consents, got {data!r}")
    consents = []
    for i, item in enumerate(data):
        path = f"{where}[{i}]"
        fields = _fields(Consent, item, path)
        for required in ("provider", "recipient", "purpose"):
            if required not in fields:
                raise ContextError(_join(path, required), "is required")
        consents.append(Consent(**fields))
    return tuple(consents)


def _fill_state_fields(fields: dict[str, Any], ref: ReferenceData) -> None:
    """Fill the fields that depend on the two States, unless they were given."""
    s, r = fields["sender"].jurisdiction, fields["recipient"].jurisdiction
    if "treaties" not in fields:
        fields["treaties"] = ref.treaties_between(s, r)
    if "flagged_jurisdiction" not in fields:
        fields["flagged_jurisdiction"] = ref.is_flagged(s) or ref.is_flagged(r)
    if "accepted_languages" not in fields:
        fields["accepted_languages"] = ref.languages_for(r)
    if "notified_channels" not in fields:
        fields["notified_channels"] = ref.channels_for(r)


def context_from_dict(data: Mapping[str, Any], reference: ReferenceData | None = None) -> Context:
    """Build and check a ``Context`` from a JSON-like mapping.

    Parties are ``{id, kind, jurisdiction?, groups?, active?}``; ``forwarding`` is a mapping
    of ``Forwarding`` fields or null; ``consents`` a list of ``{provider, recipient,
    purpose}``. Sets are given as lists.

    Raises:
        ContextError: a key is unknown, a required field is missing, or a value has the wrong
            type; ``field`` names it.
    """
    ref = reference or load_reference_data()
    if not isinstance(data, Mapping):
        raise ContextError("", f"a context must be a mapping, got {data!r}")
    specs = FIELD_SPECS[Context]
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key in _DERIVED:
            raise ContextError(key, "is derived from consents and forwarding; do not give it")
        spec = specs.get(key)
        if spec is None:
            raise ContextError(str(key), "unknown field")
        if spec == "Party":
            fields[key] = _party(value, key, ref)
        elif spec == "Forwarding:opt":
            fields[key] = _forwarding(value, key)
        elif spec == "Consent:seq":
            fields[key] = _consents(value, key)
        else:
            fields[key] = _convert(spec, value, key)
    for required in ("sender", "recipient", "message_type"):
        if required not in fields:
            raise ContextError(required, "is required")
    _fill_state_fields(fields, ref)
    return Context(**fields)


def _plain(value: object) -> object:
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Party | Forwarding | Consent):
        return {name: _plain(getattr(value, name)) for name in FIELD_SPECS[type(value)]}
    return value


def context_to_dict(context: Context) -> dict[str, Any]:
    """A JSON-ready mapping of every given field of ``context`` (sets as sorted lists)."""
    return {
        name: _plain(getattr(context, name))
        for name in FIELD_SPECS[Context]
        if name not in _DERIVED
    }
