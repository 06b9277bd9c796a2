"""Reference data: jurisdictions, their groups, languages, channels, treaties and flags.

This is configuration a deployment edits (``policies/data/*.yaml`` ships a starting point),
not policy: rules never read it. The broker uses it to build ``Party`` objects and to fill
the context fields that depend on the two States (``treaties``, ``flagged_jurisdiction``,
``accepted_languages``, ``notified_channels``).

Invariants:

- A loaded ``ReferenceData`` is consistent: every group member, treaty party and flagged
  entry names a jurisdiction defined in ``jurisdictions.yaml``; anything else raises
  ``ReferenceDataError`` naming the file and the key.
- Unknown jurisdictions are not an error at lookup time: they belong to no group, accept no
  language and no channel, and share no treaty, so every rule that needs one of those fails
  closed.
- A flagged jurisdiction is also a member of the group ``human-rights-flagged``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from policies.model import Context, Party
from policies.vocabulary import CHANNELS

DATA_DIR = Path(__file__).parent / "data"
FLAGGED_GROUP = "human-rights-flagged"
_FILES = ("jurisdictions.yaml", "groups.yaml", "treaties.yaml", "flagged.yaml")


class ReferenceDataError(ValueError):
    """Reference data is missing, unreadable or inconsistent; the message names file and key."""


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    code: str
    name: str
    languages: frozenset[str]
    mla_channels: frozenset[str]
    groups: frozenset[str]
    flag_reason: str | None = None

    @property
    def flagged(self) -> bool:
        return self.flag_reason is not None


@dataclass(frozen=True, slots=True)
class Instrument:
    """A treaty or convention. ``sides`` is set for an instrument between two blocs."""

    id: str
    title: str
    parties: frozenset[str]
    sides: tuple[frozenset[str], frozenset[str]] | None = None

    def binds(self, a: str, b: str) -> bool:
        if a == b:
            return False
        if self.sides is not None:
            left, right = self.sides
            return (a in left and b in right) or (b in left and a in right)
        return a in self.parties and b in self.parties


@dataclass(frozen=True, slots=True)
class ReferenceData:
    source: str
    jurisdictions: Mapping[str, Jurisdiction]
    groups: Mapping[str, frozenset[str]]
    instruments: tuple[Instrument, ...]

    def groups_for(self, jurisdiction: str) -> frozenset[str]:
        j = self.jurisdictions.get(jurisdiction)
        return j.groups if j else frozenset()

    def languages_for(self, jurisdiction: str) -> frozenset[str]:
        j = self.jurisdictions.get(jurisdiction)
        return j.languages if j else frozenset()

    def channels_for(self, jurisdiction: str) -> frozenset[str]:
        j = self.jurisdictions.get(jurisdiction)
        return j.mla_channels if j else frozenset()

    def is_flagged(self, jurisdiction: str) -> bool:
        j = self.jurisdictions.get(jurisdiction)
        return bool(j and j.flagged)

    def treaties_between(self, a: str, b: str) -> frozenset[str]:
        return frozenset(i.id for i in self.instruments if i.binds(a, b))


def jurisdiction_of(participant_id: str) -> str:
    """The jurisdiction encoded in a participant id ``<iso alpha-2>.<slug>`` (``it.fiu`` -> IT).

    Raises:
        ValueError: the id does not start with a two-letter code and a dot.
    """
    prefix, dot, _ = participant_id.partition(".")
    if not dot or len(prefix) != 2 or not prefix.isalpha():
        raise ValueError(f"participant id {participant_id!r} is not <iso alpha-2>.<slug>")
    return prefix.upper()


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReferenceDataError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ReferenceDataError(f"{path}: expected a mapping at the top level")
    return data


def _section(path: Path, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    section = data.get(key)
    if not isinstance(section, dict):
        raise ReferenceDataError(f"{path}: needs a mapping '{key}:'")
    for name, entry in section.items():
        if not isinstance(name, str) or not isinstance(entry, dict):
            raise ReferenceDataError(f"{path}: {key}.{name}: expected a mapping")
    return section


def _strings(path: Path, where: str, value: object) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ReferenceDataError(f"{path}: {where}: expected a list of strings")
    return frozenset(value)


def _codes(path: Path, where: str, value: object, known: Mapping[str, Any]) -> frozenset[str]:
    codes = _strings(path, where, value)
    unknown = sorted(codes - set(known))
    if unknown:
        raise ReferenceDataError(f"{path}: {where}: unknown jurisdiction {unknown[0]!r}")
    return codes


def _text(path: Path, where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReferenceDataError(f"{path}: {where}: expected a non-empty string")
    return value


def _parse(directory: Path) -> ReferenceData:
    files = {name: directory / name for name in _FILES}
    raw = {name: _load_yaml(path) for name, path in files.items()}

    jpath = files["jurisdictions.yaml"]
    jurisdictions = _section(jpath, raw["jurisdictions.yaml"], "jurisdictions")
    for code, entry in jurisdictions.items():
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise ReferenceDataError(f"{jpath}: jurisdictions.{code}: not an ISO alpha-2 code")
        channels = _strings(jpath, f"jurisdictions.{code}.mla_channels", entry.get("mla_channels"))
        unknown = sorted(channels - CHANNELS)
        if unknown:
            raise ReferenceDataError(
                f"{jpath}: jurisdictions.{code}.mla_channels: unknown channel {unknown[0]!r}"
            )

    gpath = files["groups.yaml"]
    groups: dict[str, frozenset[str]] = {}
    for name, entry in _section(gpath, raw["groups.yaml"], "groups").items():
        if name == FLAGGED_GROUP:
            raise ReferenceDataError(f"{gpath}: groups.{name}: is derived from flagged.yaml")
        groups[name] = _codes(gpath, f"groups.{name}.members", entry.get("members"), jurisdictions)

    fpath = files["flagged.yaml"]
    flagged: dict[str, str] = {}
    for code, entry in _section(fpath, raw["flagged.yaml"], "flagged").items():
        _codes(fpath, "flagged", [code], jurisdictions)
        flagged[code] = _text(fpath, f"flagged.{code}.reason", entry.get("reason"))
    groups[FLAGGED_GROUP] = frozenset(flagged)

    tpath = files["treaties.yaml"]
    instruments: list[Instrument] = []
    for ident, entry in _section(tpath, raw["treaties.yaml"], "instruments").items():
        title = _text(tpath, f"instruments.{ident}.title", entry.get("title"))
        if ("parties" in entry) == ("sides" in entry):
            raise ReferenceDataError(
                f"{tpath}: instruments.{ident}: give exactly one of 'parties' or 'sides'"
            )
        if "parties" in entry:
            parties = _codes(tpath, f"instruments.{ident}.parties", entry["parties"], jurisdictions)
            instruments.append(Instrument(ident, title, parties))
            continue
        sides = entry["sides"]
        if not isinstance(sides, list) or len(sides) != 2:
            raise ReferenceDataError(f"{tpath}: instruments.{ident}.sides: expected two lists")
        left = _codes(tpath, f"instruments.{ident}.sides[0]", sides[0], jurisdictions)
        right = _codes(tpath, f"instruments.{ident}.sides[1]", sides[1], jurisdictions)
        instruments.append(Instrument(ident, title, left | right, (left, right)))

    built: dict[str, Jurisdiction] = {}
    for code, entry in sorted(jurisdictions.items()):
        built[code] = Jurisdiction(
            code=code,
            name=_text(jpath, f"jurisdictions.{code}.name", entry.get("name")),
            languages=_strings(jpath, f"jurisdictions.{code}.languages", entry.get("languages")),
            mla_channels=frozenset(entry["mla_channels"]),
            groups=frozenset(g for g, members in groups.items() if code in members),
            flag_reason=flagged.get(code),
        )
    return ReferenceData(
        source=str(directory),
        jurisdictions=types.MappingProxyType(built),
        groups=types.MappingProxyType(groups),
        instruments=tuple(instruments),
    )


@functools.cache
def _shipped() -> ReferenceData:
    return _parse(DATA_DIR)


def load_reference_data(path: str | Path | None = None) -> ReferenceData:
    """Load the reference data from ``path`` (a directory holding jurisdictions.yaml,
    groups.yaml, treaties.yaml, flagged.yaml), or the shipped data when ``path`` is None
    (loaded once and cached).

    Raises:
        ReferenceDataError: a file is missing, not YAML, or inconsistent.
    """
    if path is None:
        return _shipped()
    return _parse(Path(path))


def groups_for(jurisdiction: str, data: ReferenceData | None = None) -> frozenset[str]:
    return (data or _shipped()).groups_for(jurisdiction)


def languages_for(jurisdiction: str, data: ReferenceData | None = None) -> frozenset[str]:
    return (data or _shipped()).languages_for(jurisdiction)


def channels_for(jurisdiction: str, data: ReferenceData | None = None) -> frozenset[str]:
    return (data or _shipped()).channels_for(jurisdiction)


def is_flagged(jurisdiction: str, data: ReferenceData | None = None) -> bool:
    return (data or _shipped()).is_flagged(jurisdiction)


def treaties_between(a: str, b: str, data: ReferenceData | None = None) -> frozenset[str]:
    return (data or _shipped()).treaties_between(a, b)


def make_party(
    participant_id: str,
    kind: str,
    *,
    active: bool = True,
    jurisdiction: str | None = None,
    data: ReferenceData | None = None,
) -> Party:
    """A ``Party`` whose groups come from the reference data; the jurisdiction defaults to
    the one encoded in the participant id.

    Raises:
        ValueError: no jurisdiction given and the id does not encode one.
    """
    code = jurisdiction or jurisdiction_of(participant_id)
    return Party(
        id=participant_id,
        kind=kind,
        jurisdiction=code,
        groups=groups_for(code, data),
        active=active,
    )


def with_reference_data(context: Context, data: ReferenceData | None = None) -> Context:
    """``context`` with the fields that depend on the two States recomputed from the data:
    ``treaties``, ``flagged_jurisdiction``, ``accepted_languages`` and ``notified_channels``
    (the last two are the recipient State's)."""
    ref = data or _shipped()
    s, r = context.sender.jurisdiction, context.recipient.jurisdiction
    return dataclasses.replace(
        context,
        treaties=ref.treaties_between(s, r),
        flagged_jurisdiction=ref.is_flagged(s) or ref.is_flagged(r),
        accepted_languages=ref.languages_for(r),
        notified_channels=ref.channels_for(r),
    )
