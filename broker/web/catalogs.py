"""The messages the templates hold, as Babel extracts them, and the ``.po`` catalogs that
must translate them; ``python -m broker.web.catalogs`` brings every catalog up to date
(new messages added with an empty translation, messages no template uses removed).

tests/unit/web/test_catalogs.py fails when a template holds text outside gettext, or a
catalog misses a message or keeps one no template uses.
"""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from broker.web.i18n import LANGUAGES, po_path
from broker.web.rendering import TEMPLATE_DIR

METHOD_MAP = [("**.html", "jinja2.ext:babel_extract")]
OPTIONS_MAP = {"**.html": {"trimmed": "true"}}


def template_messages() -> Catalog:
    """Every message of the templates, with where it is used."""
    catalog = Catalog(project="Palermo", domain="messages")
    for filename, lineno, message, comments, context in extract_from_dir(
        TEMPLATE_DIR, METHOD_MAP, OPTIONS_MAP
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def read_catalog(language: str) -> Catalog:
    with po_path(language).open("rb") as fh:
        return read_po(fh, locale=language)


def update() -> None:
    template = template_messages()
    for language in LANGUAGES:
        path = po_path(language)
        catalog = read_catalog(language) if path.exists() else Catalog(locale=language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, omit_header=False, sort_output=False)
        missing = sum(1 for m in catalog if m.id and not m.string)
        sys.stdout.write(f"{path}: {len(catalog)} messages, {missing} without translation\n")


if __name__ == "__main__":
    update()
