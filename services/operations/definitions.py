"""Operations as data: their TOML definitions, checked once at start-up.

An operation is `[operations.NAME]` with a prompt template, optional `system`, `model`,
`output` ("text" or "json" with an `output_schema`), `max_output_tokens` and
`timeout_seconds`, and its input fields under `[operations.NAME.input.FIELD]`. Every
mistake is a `ConfigError` that names the file, the table and the key.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from jinja2 import TemplateSyntaxError

from ..config import ConfigError
from .prompts import compile_template

BUILTIN_FILE = Path(__file__).with_name("builtin.toml")
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
FIELD_TYPES = ("string", "integer", "number", "boolean", "array")
ITEM_TYPES = ("string", "integer", "number", "boolean")
# The keys each field type takes besides `type`, `required`, `description`, `default`.
_FIELD_KEYS = {
    "string": {"min_length", "max_length", "enum"},
    "integer": {"minimum", "maximum", "enum"},
    "number": {"minimum", "maximum"},
    "boolean": set(),
    "array": {"items", "min_items", "max_items"},
}
_OPERATION_KEYS = {"description", "system", "prompt", "model", "output", "output_schema",
                   "max_output_tokens", "timeout_seconds", "input"}
# Strings have a length limit even when the file gives none: input is stored and sent.
DEFAULT_MAX_LENGTH = 100_000


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    description: str = ""
    default: Any = None
    min_length: int | None = None
    max_length: int | None = None
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: str = "string"
    min_items: int | None = None
    max_items: int | None = None


@dataclass(frozen=True)
class Operation:
    name: str
    description: str
    prompt: str  # a Jinja template, rendered in the sandbox (prompts.py)
    fields: tuple[Field, ...]
    system: str | None = None
    model: str | None = None  # None: the caller's choice, else the server's default
    output: str = "text"  # "text" | "json"
    output_schema: dict[str, Any] | None = None
    max_output_tokens: int | None = None
    timeout_seconds: float | None = None


class _Where:
    """Names the place of a mistake: `file: [operations.NAME.input.FIELD] key ...`."""

    def __init__(self, source: str, table: str) -> None:
        self.source, self.table = source, table

    def error(self, key: str | None, problem: str) -> ConfigError:
        place = f"{self.source}: [{self.table}]" + (f" {key}" if key else "")
        return ConfigError(f"{place} {problem}")

    def get(self, table: dict[str, Any], key: str, kind: Any, default: Any = None) -> Any:
        value = table.get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise self.error(key, f"has the wrong type ({type(value).__name__})")
        return value


def _field(where: _Where, name: str, table: Any) -> Field:
    if not isinstance(table, dict):
        raise where.error(None, "must be a table")
    kind = where.get(table, "type", str)
    if kind not in FIELD_TYPES:
        raise where.error("type", f"must be one of {', '.join(FIELD_TYPES)}")
    unknown = set(table) - _FIELD_KEYS[kind] - {"type", "required", "description", "default"}
    if unknown:
        raise where.error(sorted(unknown)[0], f"is not a setting of a {kind} field")
    number = (int, float)
    field = Field(
        name=name, type=kind, required=where.get(table, "required", bool, False),
        description=where.get(table, "description", str, ""), default=table.get("default"),
        min_length=where.get(table, "min_length", int), max_length=where.get(
            table, "max_length", int, DEFAULT_MAX_LENGTH if kind == "string" else None),
        enum=tuple(where.get(table, "enum", list)) if "enum" in table else None,
        minimum=where.get(table, "minimum", number), maximum=where.get(table, "maximum", number),
        items=where.get(table, "items", str, "string"),
        min_items=where.get(table, "min_items", int), max_items=where.get(table, "max_items", int))
    if field.items not in ITEM_TYPES:
        raise where.error("items", f"must be one of {', '.join(ITEM_TYPES)}")
    return field


def _operation(source: str, name: str, table: Any) -> Operation:
    where = _Where(source, f"operations.{name}")
    if not NAME.match(name):
        raise where.error(None, "is not a valid name (lowercase letters, digits, - and _)")
    if not isinstance(table, dict):
        raise where.error(None, "must be a table")
    unknown = set(table) - _OPERATION_KEYS
    if unknown:
        raise where.error(sorted(unknown)[0], "is not a setting; known: "
                          + ", ".join(sorted(_OPERATION_KEYS)))
    prompt = where.get(table, "prompt", str)
    if not prompt:
        raise where.error("prompt", "is required")
    for key in ("prompt", "system"):
        try:
            compile_template(table.get(key) or "")
        except TemplateSyntaxError as exc:
            raise where.error(key, f"is not a valid template: {exc.message} "
                              f"(line {exc.lineno})") from None
    inputs = where.get(table, "input", dict, {})
    fields = tuple(_field(_Where(source, f"{where.table}.input.{field}"), field, spec)
                   for field, spec in inputs.items())
    output = where.get(table, "output", str, "text")
    if output not in ("text", "json"):
        raise where.error("output", 'must be "text" or "json"')
    schema = where.get(table, "output_schema", dict)
    if schema is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise where.error("output_schema", f"is not a JSON Schema: {exc.message}") from None
    timeout = where.get(table, "timeout_seconds", (int, float))
    tokens = where.get(table, "max_output_tokens", int)
    for key, value in (("timeout_seconds", timeout), ("max_output_tokens", tokens)):
        if value is not None and value <= 0:
            raise where.error(key, "must be greater than zero")
    return Operation(name=name, description=where.get(table, "description", str, ""),
                     prompt=prompt, fields=fields, system=where.get(table, "system", str),
                     model=where.get(table, "model", str), output=output,
                     output_schema=schema if output == "json" else None,
                     max_output_tokens=tokens,
                     timeout_seconds=None if timeout is None else float(timeout))


def parse_operations(text: str, source: str) -> dict[str, Operation]:
    """The operations a TOML document defines; `source` names it in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(document) - {"operations"}
    if unknown:
        raise ConfigError(f"{source}: unknown table [{sorted(unknown)[0]}]; "
                          "define operations as [operations.NAME]")
    operations = document.get("operations", {})
    return {name: _operation(source, name, table) for name, table in operations.items()}


def load_operations(path: str | None) -> dict[str, Operation]:
    """The built-ins, then the operator's file's (which may replace a built-in)."""
    operations = parse_operations(BUILTIN_FILE.read_text(encoding="utf-8"), "built-in operations")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"SLUICE_OPERATIONS_FILE cannot be read: {exc.strerror} "
                              f"({path})") from None
        operations.update(parse_operations(text, f"SLUICE_OPERATIONS_FILE ({Path(path).name})"))
    return operations
