"""``goaml``: UNODC goAML 5.0.2 XML, the reports FIUs receive from reporting entities.

- ``disclosure_draft`` imports a goAML report (STR, SAR, CTR, ...) as an ``fiu.disclosure``
  draft: the report validated against the shipped schema (``xmlschema.XMLSchema11``), its
  transactions and parties mapped into the body, the whole report kept (lossless, as
  ``goaml_report``) and the original file attached: its name, media type, size and SHA-256 in
  ``attachments``, its bytes (base64) in ``body.original``.
- ``disclosure_to_report`` exports a disclosure as schema-valid goAML XML: the report it was
  imported from, re-encoded; or, for a disclosure that did not come from goAML, a SAR built
  from its metadata and body (which must then name goAML report indicators in
  ``body.indicators``: the schema requires at least one).
- The adapter (configuration ``{"directory": "/srv/goaml/in", "rentity_id": 1,
  "currency": "EUR"}``) delivers ``fiu.disclosure`` messages to an FIU system that ingests
  goAML files: ``<message id>.xml`` written atomically into ``directory``. Other message types
  are refused (dead letter), as is a disclosure that cannot be exported.

XML from outside is parsed with entity expansion and every external resource refused
(``defuse="always"``, ``allow="none"``). The schema shipped here is the patched one: see
``PATCHES.md`` beside this file.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import functools
import hashlib
import io
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from adapters.contracts import (
    AdapterConfigError,
    AdapterSpec,
    DeliveryResult,
    DestinationRules,
    NodeIdentity,
    Outgoing,
)
from adapters.destinations import STRICT, check_directory
from adapters.filedrop import probe as probe_directory
from adapters.filedrop import write_atomically
from broker.core.errors import PalermoError, SchemaViolation

if TYPE_CHECKING:
    import xmlschema

SCHEMA_PATH = Path(__file__).with_name("goAMLSchema-5.0.2.xsd")
MEDIA_TYPE = "application/xml"
DISCLOSURE = "fiu.disclosure"
MAX_REPORT_BYTES = 512 * 1024


class GoamlInvalid(SchemaViolation):
    slug, title = "goaml-invalid", "The goAML report does not match the goAML 5.0.2 schema"


@functools.cache
def schema() -> xmlschema.XMLSchema11:
    """The patched goAML 5.0.2 schema, loaded once per process (about a second). xmlschema
    is imported here, not at the top: it weighs about 9 MB, which a process that never
    handles a goAML report (most API processes) does not carry."""
    import xmlschema

    return xmlschema.XMLSchema11(str(SCHEMA_PATH))


def _resource(xml: bytes) -> xmlschema.XMLResource:
    import xmlschema  # see schema()

    if len(xml) > MAX_REPORT_BYTES:
        raise GoamlInvalid(f"the report is over {MAX_REPORT_BYTES} bytes", field="report")
    try:
        return xmlschema.XMLResource(io.BytesIO(xml), defuse="always", allow="none")
    except (xmlschema.XMLResourceError, ET.ParseError, SyntaxError, ValueError) as exc:
        raise GoamlInvalid(f"the report is not well-formed XML: {exc}", field="report") from exc


def validate(xml: bytes) -> None:
    """Raises GoamlInvalid naming the first problems (path and reason)."""
    errors = list(schema().iter_errors(_resource(xml)))
    if errors:
        problems = [f"{e.path or '/'}: {e.reason}" for e in errors[:5]]
        raise GoamlInvalid(
            f"{len(errors)} schema error(s): " + "; ".join(problems),
            errors=[{"field": e.path or "/", "message": str(e.reason)} for e in errors[:20]],
        )


def decode(xml: bytes) -> dict[str, Any]:
    """The report as JSON-ready data (decimals as strings). Raises GoamlInvalid."""
    validate(xml)
    data = schema().to_dict(_resource(xml), decimal_type=str)
    assert isinstance(data, dict)
    return data


def encode(report: Mapping[str, Any]) -> bytes:
    """Schema-valid goAML XML of ``report`` (as ``decode`` returns it). Raises GoamlInvalid."""
    import xmlschema  # see schema()

    try:
        element = schema().encode(dict(report), path="report")
    except (xmlschema.XMLSchemaValidationError, xmlschema.XMLSchemaEncodeError) as exc:
        raise GoamlInvalid(f"cannot make a valid report: {exc.reason}", field="report") from exc
    if not isinstance(element, ET.Element):
        raise GoamlInvalid("cannot make a valid report", field="report")
    xml: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    validate(xml)  # what leaves is checked like what comes in
    return xml


# --- import: a report becomes a disclosure ----------------------------------------------


def _party(node: Mapping[str, Any] | None) -> dict[str, Any]:
    """A party of a transaction side or an activity: kind, name and country, nothing else."""
    if not node:
        return {}
    for key, value in node.items():
        if not isinstance(value, Mapping):
            continue
        kind = key.removeprefix("from_").removeprefix("to_").removeprefix("t_")
        if kind in ("person", "person_my_client"):
            name = " ".join(str(value.get(k, "")) for k in ("first_name", "last_name")).strip()
            return {"kind": "person", "name": name, "country": value.get("nationality1")}
        if kind in ("entity", "entity_my_client"):
            return {
                "kind": "entity",
                "name": value.get("name"),
                "country": value.get("incorporation_country_code"),
            }
        if kind in ("account", "account_my_client"):
            return {
                "kind": "account",
                "name": value.get("account"),
                "country": value.get("institution_country"),
            }
    return {}


def _side(transaction: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    for key in (f"t_{prefix}_my_client", f"t_{prefix}"):
        if key in transaction:
            side = transaction[key]
            party = _party(side)
            party["country"] = side.get(f"{prefix}_country", party.get("country"))
            party["funds"] = side.get(f"{prefix}_funds_code")
            return party
    return {}


def summarise(report: Mapping[str, Any]) -> dict[str, Any]:
    """The transactions and parties of a report, mapped for the disclosure body."""
    transactions = [
        {
            "number": t.get("transactionnumber"),
            "date": t.get("date_transaction"),
            "amount_local": t.get("amount_local"),
            "mode": t.get("transmode_code"),
            "from": _side(t, "from"),
            "to": _side(t, "to"),
        }
        for t in report.get("transaction", [])
    ]
    activity = report.get("activity") or {}
    parties = [
        {**_party(p), "significance": p.get("significance"), "reason": p.get("reason")}
        for p in (activity.get("report_parties") or {}).get("report_party", [])
    ]
    indicators = (report.get("report_indicators") or {}).get("indicator", [])
    return {
        "report_code": report.get("report_code"),
        "entity_reference": report.get("entity_reference"),
        "rentity_id": report.get("rentity_id"),
        "submission_date": report.get("submission_date"),
        "currency_code_local": report.get("currency_code_local"),
        "reason": report.get("reason"),
        "action": report.get("action"),
        "indicators": list(indicators),
        "transactions": transactions,
        "parties": parties,
    }


def disclosure_draft(
    xml: bytes,
    *,
    recipient: str,
    legal_basis: str,
    purpose: str,
    name: str = "report.xml",
    data_categories: list[str] | None = None,
) -> dict[str, Any]:
    """A ``fiu.disclosure`` draft (``POST /v1/messages`` as ``{"draft": ...}``, or signed
    with the sender's key) made from a goAML report. Raises GoamlInvalid."""
    report = decode(xml)
    digest = hashlib.sha256(xml).hexdigest()
    return {
        "type": DISCLOSURE,
        "recipient": recipient,
        "legal_basis": legal_basis,
        "purpose": purpose,
        "data_categories": data_categories or ["transaction", "identity"],
        "attachments": [
            {"name": name, "media_type": MEDIA_TYPE, "size": len(xml), "sha256": digest}
        ],
        "body": {
            "source": "goaml",
            **summarise(report),
            "goaml_report": report,
            "original": {
                "name": name,
                "media_type": MEDIA_TYPE,
                "sha256": digest,
                "content_base64": base64.b64encode(xml).decode(),
            },
        },
    }


# --- export: a disclosure becomes a report ------------------------------------------------


def _goaml_time(value: str | None) -> str:
    when = dt.datetime.fromisoformat(value) if value else dt.datetime.now(dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def disclosure_to_report(
    payload: Mapping[str, Any], *, rentity_id: int = 1, currency: str = "EUR"
) -> bytes:
    """Schema-valid goAML XML for a disclosure payload. Raises GoamlInvalid."""
    body = payload.get("body") or {}
    if isinstance(body.get("goaml_report"), Mapping):
        return encode(body["goaml_report"])
    text = str(body.get("summary") or body.get("text") or payload.get("purpose") or "")
    report: dict[str, Any] = {
        "rentity_id": rentity_id,
        "submission_code": "E",
        "report_code": "SAR",
        "entity_reference": str(payload.get("id", ""))[:255],
        "submission_date": _goaml_time(payload.get("created_at")),
        "currency_code_local": currency,
        "reason": (text or "Spontaneous disclosure")[:4000],
        "action": f"Disclosed by {payload.get('sender')} through Palermo"[:4000],
        "activity": {
            "report_parties": {
                "report_party": [
                    {
                        "entity": {"name": str(payload.get("sender", "unknown"))[:255]},
                        "significance": 5,
                        "reason": str(payload.get("legal_basis") or "disclosure")[:4000],
                    }
                ]
            }
        },
    }
    indicators = body.get("indicators")
    if not isinstance(indicators, list) or not indicators:
        raise GoamlInvalid(
            "a goAML report needs at least one report indicator: give the disclosure "
            "body.indicators (goAML indicator codes)",
            field="body.indicators",
        )
    report["report_indicators"] = {"indicator": [str(i) for i in indicators]}
    return encode(report)


# --- the adapter ---------------------------------------------------------------------------


def check(config: Mapping[str, Any], rules: DestinationRules = STRICT) -> dict[str, Any]:
    unknown = set(config) - {"directory", "rentity_id", "currency"}
    if unknown:
        raise AdapterConfigError(
            f"unknown goaml setting {sorted(unknown)[0]!r}", field="adapter_config"
        )
    directory = config.get("directory")
    if not isinstance(directory, str) or not os.path.isabs(directory):
        raise AdapterConfigError(
            "directory must be an absolute path", field="adapter_config.directory"
        )
    check_directory(directory, rules, field="adapter_config.directory")
    rentity = config.get("rentity_id", 1)
    if not isinstance(rentity, int) or isinstance(rentity, bool) or rentity < 1:
        raise AdapterConfigError(
            "rentity_id must be a positive integer", field="adapter_config.rentity_id"
        )
    currency = config.get("currency", "EUR")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise AdapterConfigError(
            "currency must be an ISO 4217 code", field="adapter_config.currency"
        )
    return {"directory": directory, "rentity_id": rentity, "currency": currency}


class GoamlAdapter:
    name = "goaml"
    pull = False

    def __init__(self, config: dict[str, Any]) -> None:
        self.directory = Path(config["directory"])
        self.rentity_id: int = config["rentity_id"]
        self.currency: str = config["currency"]

    async def deliver(self, item: Outgoing) -> DeliveryResult:
        if item.message_type != DISCLOSURE:
            return DeliveryResult.reject(f"the goaml adapter carries {DISCLOSURE} only")
        try:
            payload = orjson.loads(item.envelope.payload)
            xml = await asyncio.to_thread(
                disclosure_to_report, payload, rentity_id=self.rentity_id, currency=self.currency
            )
        except PalermoError as exc:
            return DeliveryResult.reject(f"not exportable as goAML: {exc.detail}"[:500])
        name = f"{item.message_id}.xml"
        try:
            await asyncio.to_thread(write_atomically, self.directory, name, xml)
        except OSError as exc:
            return DeliveryResult.retry(f"cannot write to the goAML directory ({exc.strerror})")
        return DeliveryResult.ok(file=name, sha256=hashlib.sha256(xml).hexdigest())

    async def aclose(self) -> None:
        return None


def build(config: dict[str, Any], node: NodeIdentity) -> GoamlAdapter:
    return GoamlAdapter(config)


SPEC = AdapterSpec(
    name="goaml",
    summary="fiu.disclosure exported as goAML 5.0.2 XML files for an FIU system",
    check=check,
    build=build,
    probe=probe_directory,
)
