"""The web app's text is all in gettext, and every catalog translates all of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jinja2 import Environment

from broker.web import i18n
from broker.web.catalogs import policy_texts, read_catalog, template_messages
from broker.web.rendering import TEMPLATE_DIR
from policies.engine import default_policy

# Words a page may show untranslated: the product's name.
UNTRANSLATED = {"Palermo"}
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_READ_ATTRS = re.compile(r'\b(aria-label|title|alt|placeholder)="([^"]*)"')


def _outside_jinja(source: str) -> str:
    """The template with every Jinja construct replaced by a marker, leaving the HTML."""
    env = Environment(extensions=["jinja2.ext.i18n"])
    parts: list[str] = []
    for _lineno, kind, value in env.lex(source):
        parts.append(value if kind == "data" else "\x00")
    return "".join(parts)


def _stray_text(source: str) -> list[str]:
    html = _outside_jinja(source)
    found = [
        value
        for _, value in _READ_ATTRS.findall(html)
        if re.search(r"[^\W\d_]", value.replace("\x00", ""))
    ]
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    text = re.sub(r"<[^>]*>", " ", html)
    for word in re.findall(r"[^\W\d_][\w'-]*", text.replace("\x00", " ")):
        if word not in UNTRANSLATED:
            found.append(word)
    return found


TEMPLATES = sorted(TEMPLATE_DIR.glob("*.html"))


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.name for p in TEMPLATES])
def test_templates_hold_no_text_outside_gettext(path: Path) -> None:
    assert _stray_text(path.read_text()) == []


def test_the_check_finds_stray_text() -> None:
    assert _stray_text('<p>{{ _("Fine") }}</p><p>Not fine</p>') == ["Not", "fine"]
    assert _stray_text('<nav aria-label="Main">{{ x }}</nav>') == ["Main"]
    assert _stray_text("<nav aria-label=\"{{ _('Main') }}\"><a>Palermo</a></nav>") == []


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_each_catalog_has_exactly_the_templates_messages(language: str) -> None:
    wanted = {m.id for m in template_messages() if m.id}
    catalog = read_catalog(language)
    held = {m.id for m in catalog if m.id}
    assert sorted(wanted - held) == [], "missing: run python -m broker.web.catalogs"
    assert sorted(held - wanted) == [], "no template uses these: run python -m broker.web.catalogs"
    untranslated = [m.id for m in catalog if m.id and not m.string]
    assert untranslated == []
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert fuzzy == []


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_pack_rule_text_is_translated(language: str) -> None:
    """The text of every rule of the loaded packs is a catalog entry with its translation
    (English: itself; French and Spanish: not the English left in place)."""
    texts = {rule.title for rule in default_policy().rules}
    assert texts
    assert texts == {text for _, text in policy_texts()}
    held = {m.id: m.string for m in read_catalog(language) if m.id}
    missing = sorted(t for t in texts if not held.get(t))
    assert missing == [], "missing: run python -m broker.web.catalogs and translate"
    if language != "en":
        assert sorted(t for t in texts if held[t] == t) == []


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_translations_keep_their_placeholders(language: str) -> None:
    for message in read_catalog(language):
        if message.id:
            assert set(_PLACEHOLDER.findall(str(message.string))) == set(
                _PLACEHOLDER.findall(str(message.id))
            ), message.id


def test_compiled_catalogs_translate() -> None:
    assert i18n.translations("fr").gettext("Sign in") == "Se connecter"
    assert i18n.translations("es").gettext("Sign in") == "Iniciar sesión"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, None, "en"),
        (None, "fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        (None, "de-DE,es;q=0.5,fr;q=0.4", "es"),
        (None, "de, it", "en"),
        (None, "fr;q=0, es;q=0.1", "es"),
        ("es", "fr", "es"),
        ("xx", "fr", "fr"),
    ],
)
def test_language_negotiation(cookie: str | None, header: str | None, expected: str) -> None:
    assert i18n.negotiate(cookie, header) == expected


def test_dates_in_the_readers_time_zone() -> None:
    import datetime as dt

    moment = dt.datetime(2026, 12, 3, 23, 30, tzinfo=dt.UTC)
    assert "4 déc. 2026" in i18n.Formatter("fr", "Europe/Paris").datetime(moment)
    assert "00:30" in i18n.Formatter("fr", "Europe/Paris").datetime(moment)
    assert "Dec 3, 2026" in i18n.Formatter("en", "UTC").datetime(moment)
    assert i18n.timezone_or("Mars/Olympus", "UTC") == "UTC"
