"""The web app's languages: gettext catalogs compiled at start, the choice of a locale, and
dates shown in the reader's time zone.

The ``.po`` files under ``locale/<lang>/LC_MESSAGES/messages.po`` are the only source: they
are compiled in memory when the app starts, so a fresh install needs no build step and no
compiled ``.mo`` can fall behind its ``.po``. A language is chosen from the ``palermo_lang``
cookie (the switch in every page's header), else ``Accept-Language``, else English.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import zoneinfo
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "fr", "es")
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE = "palermo_lang"
TIMEZONE_COOKIE = "palermo_tz"
# Each language's own name, as the switch shows it.
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "es": "Español"}


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """The compiled catalog of a language. Raises FileNotFoundError for an unknown one."""
    with po_path(language).open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The language to answer in: the reader's choice, else their browser's, else English."""
    if cookie in LANGUAGES:
        assert cookie is not None
        return cookie
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            weighted.append((-quality, index, primary))
    return sorted(weighted)[0][2] if weighted else DEFAULT_LANGUAGE


@cache
def timezones() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def day_start(value: str, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """The start of the day a form gives as ``YYYY-MM-DD`` in the reader's time zone, in UTC;
    None if it is not such a date."""
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def timezone_or(name: str | None, default: str) -> str:
    """``name`` if it is a known IANA time zone, else ``default``."""
    return name if name and name in timezones() else default


class Formatter:
    """Dates and times for one reader: their language, their time zone."""

    def __init__(self, language: str, timezone: str) -> None:
        self.locale = Locale.parse(language)
        self.timezone = timezone
        self.tzinfo = zoneinfo.ZoneInfo(timezone)

    def datetime(self, value: dt.datetime | None) -> str:
        if value is None:
            return ""
        return format_datetime(value, format="medium", tzinfo=self.tzinfo, locale=self.locale)

    def iso(self, value: dt.datetime | None) -> str:
        return value.astimezone(dt.UTC).isoformat() if value is not None else ""
