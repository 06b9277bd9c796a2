"""The messages the templates hold, as Babel extracts them, and the ``.po`` catalogs that
must translate them; ``python -m broker.web.catalogs`` brings every catalog up to date
(new messages added with an empty translation, messages no template uses removed).

Beside the templates' messages, the catalogs hold the texts of the workflow tables and the
built-in clocks that pages show (workflow titles, transition summaries, guard texts, state
notes, clock and milestone titles) and the text of every rule of the shipped policy packs:
templates pass them through the ``tr`` filter, so the tables and packs stay the one source of
their English text and a new row or rule is a catalog entry to translate.

tests/unit/broker/test_web_catalogs.py fails when a template holds text outside gettext, or a
catalog misses a message or keeps one no template uses.
"""

from __future__ import annotations

import sys

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from broker.cases.clocks import DEFAULT_CLOCKS, REQUESTED_DEADLINE_TITLE
from broker.cases.tables import WORKFLOWS
from broker.web.i18n import LANGUAGES, po_path
from broker.web.rendering import TEMPLATE_DIR
from policies.engine import default_policy

METHOD_MAP = [("**.html", "jinja2.ext:babel_extract")]
OPTIONS_MAP = {"**.html": {"trimmed": "true"}}


def template_messages() -> Catalog:
    """Every message of the templates, with where it is used."""
    catalog = Catalog(project="Palermo", domain="messages")
    for filename, lineno, message, comments, context in extract_from_dir(
        TEMPLATE_DIR, METHOD_MAP, OPTIONS_MAP
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    for where, text in [*table_texts(), *policy_texts()]:
        catalog.add(text, None, [(where, 0)])
    return catalog


def table_texts() -> list[tuple[str, str]]:
    """(where, text) for every text of the workflow tables and built-in clocks a page shows
    through the ``tr`` filter."""
    out: list[tuple[str, str]] = []
    for name, wf in WORKFLOWS.items():
        where = f"broker/cases/tables:{name}"
        out.append((where, wf.title))
        out.extend((where, note) for note in wf.state_notes.values())
        for t in wf.transitions:
            out.append((where, t.summary))
            out.extend((where, g.text) for g in t.guards)
    for clock_id, clock in DEFAULT_CLOCKS.items():
        where = f"broker/cases/clocks:{clock_id}"
        out.append((where, str(clock["title"])))
        out.extend((where, str(m.get("title", m["name"]))) for m in clock["milestones"])
    out.append(("broker/cases/clocks:requested", REQUESTED_DEADLINE_TITLE))
    return [(w, t) for w, t in out if t]


def policy_texts() -> list[tuple[str, str]]:
    """(where, text) for the text of every rule of the shipped policy packs: what a refusal
    or a permit shows beside the rule's id and citation, through the ``tr`` filter. The
    citations ("LED art. 10") and ids stay as the packs write them."""
    return [(f"policies/packs:{rule.pack}", rule.title) for rule in default_policy().rules]


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
