"""An operation's input: checked field by field, and described as a JSON Schema.

A bad value is a `400 invalid_input` whose message and `param` name the field
(`input.text`), so a form can point at it.
"""
from __future__ import annotations

from typing import Any

from ..errors import ApiError
from .definitions import Field, Operation

_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_input", f"'input.{field}' {problem}.", param=f"input.{field}")


def _is(kind: str, value: Any) -> bool:
    if isinstance(value, bool) and kind != "boolean":
        return False
    return isinstance(value, _JSON_TYPES[kind])


def _check_scalar(field: Field, value: Any) -> None:
    if not _is(field.type, value):
        raise _invalid(field.name, f"must be a {field.type}")
    if field.enum is not None and value not in field.enum:
        raise _invalid(field.name, "must be one of " + ", ".join(map(str, field.enum)))
    if field.type == "string":
        if field.min_length is not None and len(value) < field.min_length:
            raise _invalid(field.name, f"must be at least {field.min_length} characters long")
        if field.max_length is not None and len(value) > field.max_length:
            raise _invalid(field.name, f"must be at most {field.max_length} characters long")
    elif field.type in ("integer", "number"):
        if field.minimum is not None and value < field.minimum:
            raise _invalid(field.name, f"must be at least {field.minimum:g}")
        if field.maximum is not None and value > field.maximum:
            raise _invalid(field.name, f"must be at most {field.maximum:g}")


def _check_array(field: Field, value: Any) -> None:
    if not isinstance(value, list):
        raise _invalid(field.name, f"must be an array of {field.items}s")
    if field.min_items is not None and len(value) < field.min_items:
        raise _invalid(field.name, f"must have at least {field.min_items} item(s)")
    if field.max_items is not None and len(value) > field.max_items:
        raise _invalid(field.name, f"must have at most {field.max_items} items")
    for item in value:
        if not _is(field.items, item):
            raise _invalid(field.name, f"must be an array of {field.items}s")
        if field.items == "string" and len(item) > 1000:
            raise _invalid(field.name, "has an item longer than 1000 characters")


def check_input(operation: Operation, raw: Any) -> dict[str, Any]:
    """The input's values, every field present (a missing optional one is its default)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_input", "'input' must be an object of the operation's "
                       "fields.", param="input")
    known = {field.name for field in operation.fields}
    for name in raw:
        if name not in known:
            raise _invalid(name, f"is not a field of {operation.name}; its fields are "
                           + (", ".join(sorted(known)) or "none"))
    values: dict[str, Any] = {}
    for field in operation.fields:
        value = raw.get(field.name)
        if value is None:
            if field.required:
                raise _invalid(field.name, "is required")
            values[field.name] = field.default
            continue
        (_check_array if field.type == "array" else _check_scalar)(field, value)
        values[field.name] = value
    return values


def _field_schema(field: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": field.type}
    if field.description:
        schema["description"] = field.description
    for key, value in (("minLength", field.min_length), ("maxLength", field.max_length),
                       ("minimum", field.minimum), ("maximum", field.maximum),
                       ("minItems", field.min_items), ("maxItems", field.max_items),
                       ("default", field.default)):
        if value is not None:
            schema[key] = value
    if field.enum is not None:
        schema["enum"] = list(field.enum)
    if field.type == "array":
        schema["items"] = {"type": field.items}
    return schema


def input_schema(operation: Operation) -> dict[str, Any]:
    """The operation's input as a JSON Schema object (what a form is built from)."""
    return {"type": "object",
            "properties": {field.name: _field_schema(field) for field in operation.fields},
            "required": [field.name for field in operation.fields if field.required],
            "additionalProperties": False}
