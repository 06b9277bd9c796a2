"""What the case pages need beyond the case services: forms generated from the JSON schema of
a request or an event body, the form data parsed back into that body, a multipart upload
streamed without spooling, and the workflow drawn as boxes.

Invariants:
- A form is derived from the body model's JSON schema (``model_json_schema()``), never
  written by hand: a field added to a body in ``broker.cases.bodies`` appears on its form.
- Parsing never raises: what cannot be read becomes an error on its field, and the model's
  own validation errors are mapped to the fields they name, so a wrong form is a 4xx page
  with every error, never a 500.
- An upload is hashed and encrypted as it streams (``broker.cases.evidence.receive``); the
  form's CSRF token must come before the file, and is checked before any byte is stored.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from python_multipart.multipart import MultipartParser, parse_options_header

from broker.cases.workflow import Side, Transition, Workflow
from broker.core.errors import SchemaViolation

# Rows offered for a list of objects (the persons concerned of 18(15)(e)).
GROUP_ROWS = 3
_CITATION = re.compile(r"^\d+\(\d+\)")


@dataclass(slots=True)
class FormField:
    """One field of a generated form. ``name`` is the form name (``persons_concerned.0.ref``
    inside a group); ``key`` names its label and hint in ``_case_fields.html``."""

    name: str
    key: str
    kind: str  # text, textarea, lines, select, checkboxes, checkbox, integer, datetime, group
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    citation: str = ""
    note: str = ""
    maxlength: int | None = None
    rows: list[list[FormField]] = field(default_factory=list)
    value: Any = None

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")


@dataclass(frozen=True, slots=True)
class FieldError:
    field_id: str
    key: str
    code: str
    message: str


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema with its ``$ref`` followed and an ``anyOf [x, null]`` unwrapped, and whether
    null is allowed."""
    nullable = False
    node = dict(schema)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        nullable = len(options) < len(node["anyOf"])
        inner = dict(options[0]) if options else {}
        node = {**inner, **{k: v for k, v in node.items() if k != "anyOf"}}
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node, nullable


def _citation_and_note(description: str) -> tuple[str, str]:
    head, _, rest = description.partition(";")
    if _CITATION.match(head.strip()):
        # "16(1): the offence": the citation, then what it is about.
        cite, _, about = head.strip().partition(": ")
        return "UNTOC art. " + cite, "; ".join(x for x in (about, rest.strip()) if x)
    if head.strip().startswith(("UNTOC art.", "FATF R.", "Egmont Principles")):
        return head.strip(), rest.strip()
    return "", description


def form_fields(
    model: type[BaseModel],
    *,
    choices: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    prefix: str = "",
) -> list[FormField]:
    """The fields of ``model``'s form, in the schema's order. Nested objects other than lists
    of objects (an event's optional amended request) are left out: the case's own request
    stands. ``choices`` gives the options of fields the schema cannot list (evidence ids)."""
    schema = model.model_json_schema()
    return _fields(schema, schema.get("$defs", {}), choices or {}, prefix)


def _fields(
    schema: Mapping[str, Any],
    defs: Mapping[str, Any],
    choices: Mapping[str, Sequence[tuple[str, str]]],
    prefix: str,
) -> list[FormField]:
    required = set(schema.get("required", []))
    out: list[FormField] = []
    for key, raw in schema.get("properties", {}).items():
        node, _nullable = _resolve(raw, defs)
        citation, note = _citation_and_note(str(raw.get("description") or ""))
        made = FormField(
            name=prefix + key, key=key, kind="text", required=key in required, citation=citation
        )
        made.note = note
        default = raw.get("default")
        if isinstance(default, str):
            made.value = default
        kind = node.get("type")
        if kind == "object" or ("properties" in node and kind is None):
            continue
        if kind == "boolean":
            made.kind = "checkbox"
        elif kind == "integer":
            made.kind = "integer"
        elif "enum" in node:
            made.kind = "select"
            made.choices = tuple((str(v), str(v)) for v in node["enum"])
        elif kind == "string" and node.get("format") == "date-time":
            made.kind = "datetime"
        elif kind == "string":
            made.maxlength = node.get("maxLength")
            made.kind = "textarea" if (made.maxlength or 0) > 500 else "text"
        elif kind == "array":
            _array(made, node, defs, choices, prefix)
        out.append(made)
    return out


def _array(
    made: FormField,
    node: Mapping[str, Any],
    defs: Mapping[str, Any],
    choices: Mapping[str, Sequence[tuple[str, str]]],
    prefix: str,
) -> None:
    """A list field: checkboxes over its closed values (or the choices given for its ids),
    rows of sub-fields for objects, else one value per line."""
    items, _ = _resolve(node.get("items", {}), defs)
    if "enum" in items:
        made.kind = "checkboxes"
        made.choices = tuple((str(v), str(v)) for v in items["enum"])
    elif items.get("format") == "uuid":
        made.kind = "checkboxes"
        made.choices = tuple(choices.get(made.key, ()))
    elif items.get("type") == "object":
        made.kind = "group"
        made.rows = [
            _fields(items, defs, choices, f"{prefix}{made.key}.{i}.") for i in range(GROUP_ROWS)
        ]
    else:
        made.kind = "lines"


def fill(fields: Sequence[FormField], values: Mapping[str, Any]) -> None:
    """Put ``values`` (form names to a string or a list of strings) into the fields."""
    for f in fields:
        if f.kind == "group":
            for row in f.rows:
                fill(row, values)
        elif f.name in values:
            f.value = values[f.name]


def form_values(fields: Sequence[FormField], form: Any) -> dict[str, Any]:
    """What the reader typed, by form name: kept when the form is shown again."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.kind == "group":
            for row in f.rows:
                out.update(form_values(row, form))
        elif f.kind == "checkboxes":
            out[f.name] = [str(v) for v in form.getlist(f.name)]
        else:
            out[f.name] = str(form.get(f.name) or "")
    return out


def parse(
    fields: Sequence[FormField], values: Mapping[str, Any], tz: zoneinfo.ZoneInfo
) -> tuple[dict[str, Any], list[FieldError]]:
    """The body's data from the form values, and the values that could not be read."""
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for f in fields:
        if f.kind == "group":
            items = []
            for row in f.rows:
                item, row_errors = parse(row, values, tz)
                errors.extend(row_errors)
                if item:
                    items.append(item)
            value: Any = items or None
        else:
            value, error = _value(f, values.get(f.name), tz)
            if error is not None:
                errors.append(error)
        if value is not None:
            data[f.key] = value
    return data, errors


def _value(f: FormField, raw: Any, tz: zoneinfo.ZoneInfo) -> tuple[Any, FieldError | None]:
    """One field's value (None when left empty), or why it cannot be read."""
    if f.kind == "checkboxes":
        return [v for v in (raw or []) if v] or None, None
    if f.kind == "checkbox":
        return (True if raw else None), None
    if f.kind == "lines":
        lines = [line.strip() for line in str(raw or "").splitlines() if line.strip()]
        return lines or None, None
    text = str(raw or "").strip()
    if not text or f.kind not in ("integer", "datetime"):
        return text or None, None
    return _typed(f, text, tz)


def _typed(f: FormField, text: str, tz: zoneinfo.ZoneInfo) -> tuple[Any, FieldError | None]:
    try:
        if f.kind == "integer":
            return int(text), None
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        code = "int_parsing" if f.kind == "integer" else "datetime_parsing"
        return None, FieldError(f.id, f.key, code, text)
    return (when if when.tzinfo else when.replace(tzinfo=tz)).isoformat(), None


def validate(
    model: type[BaseModel], data: Mapping[str, Any], fields: Sequence[FormField]
) -> tuple[BaseModel | None, list[FieldError]]:
    """``data`` as ``model``, or the errors mapped to the fields they name."""
    try:
        return model.model_validate(dict(data)), []
    except ValidationError as exc:
        by_name = {f.name: f for f in _flat(fields)}
        errors = []
        for err in exc.errors(include_url=False, include_input=False):
            name = ".".join(str(p) for p in err["loc"])
            f = by_name.get(name) or by_name.get(str(err["loc"][0]) if err["loc"] else "")
            errors.append(
                FieldError(
                    f.id if f else "main", f.key if f else name, str(err["type"]), err["msg"]
                )
            )
        return None, errors


def _flat(fields: Sequence[FormField]) -> list[FormField]:
    out = []
    for f in fields:
        out.append(f)
        for row in f.rows:
            out.extend(_flat(row))
    return out


# --- the case's workflow, drawn --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateBox:
    name: str
    current: bool
    final: bool
    reached: bool
    note: str


def state_boxes(wf: Workflow, current: str, visited: set[str]) -> list[StateBox]:
    """Every state of the workflow in the table's order, the current one and those the case
    went through marked."""
    return [
        StateBox(
            s, s == current, s in wf.finals, s in visited or s == current, wf.state_notes.get(s, "")
        )
        for s in wf.states
    ]


def edges(wf: Workflow) -> list[tuple[str, str, str, str]]:
    """(from, event, to, side) for every transition; a side event goes to its own state, and
    one that ends a consultation also to each state it may return to."""
    return [
        (source, t.event, target, t.side.value)
        for t in wf.transitions
        for source in t.sources
        for target in (t.targets or (source,))
    ]


def next_from(wf: Workflow, state: str) -> list[Transition]:
    return [t for t in wf.from_state(state) if t.side is not Side.SYSTEM]


# --- uploads -----------------------------------------------------------------------------------


class MultipartUpload:
    """One file of a ``multipart/form-data`` request body, streamed: feed the body chunk by
    chunk and iterate ``file_chunks()`` into ``evidence.receive``. The text fields before the
    file (the CSRF token) are checked by ``check`` when the file part starts."""

    def __init__(
        self,
        content_type: str,
        stream: AsyncIterator[bytes],
        *,
        check: Callable[[Mapping[str, str]], None],
        file_field: str = "file",
        max_field: int = 4096,
    ) -> None:
        kind, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise SchemaViolation("the upload is a multipart/form-data form", field="file")
        self.stream = stream
        self.check = check
        self.file_field = file_field
        self.max_field = max_field
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.media_type: str | None = None
        self._name = ""
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._value = bytearray()
        self._in_file = False
        self._done_file = False
        self._pending: list[bytes] = []
        self._error: Exception | None = None
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}
        self._value = bytearray()
        self._in_file = False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name == self.file_field and b"filename" in params and not self._done_file:
            self.filename = params[b"filename"].decode("utf-8", "replace").rsplit("/", 1)[-1]
            self.media_type = self._headers.get(b"content-type", b"").decode() or None
            self._in_file = True
            try:
                self.check(self.fields)
            except Exception as exc:  # raised again from the stream, outside the callback
                self._error = exc

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(bytes(data[start:end]))
        elif len(self._value) + end - start <= self.max_field:
            self._value += data[start:end]

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._done_file = True
        elif self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    async def file_chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.parser.write(chunk)
            if self._error is not None:
                raise self._error
            pending, self._pending = self._pending, []
            for piece in pending:
                if piece:
                    yield piece
        self.parser.finalize()
        if self._error is not None:
            raise self._error
        for piece in self._pending:
            yield piece
        self._pending = []
