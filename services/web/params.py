"""Ids and numbers taken from a URL or a header, checked strictly.

`str.isdigit` accepts '²' and '٣', and `int()` takes thousands of digits: both have
reached Sluice's services as 500s. Here a number is 1-18 ASCII digits, and an id
in a path is a short run of id characters — anything else never reaches a query.
"""
from __future__ import annotations

import re

from flask import Flask
from werkzeug.routing import BaseConverter

from ..errors import ApiError

_ASCII_INT = re.compile(r"[0-9]{1,18}")


def ascii_int(raw: str, name: str, code: str = "invalid_parameter") -> int:
    """`raw` as a non-negative integer that fits 64 bits, or a 400 `code` naming `name`."""
    value = raw.strip()
    if not _ASCII_INT.fullmatch(value):
        raise ApiError(400, code,
                       f"{name} must be a non-negative integer of at most 18 digits.")
    return int(value)


def one_of(raw: str | None, choices: tuple[str, ...], name: str) -> str | None:
    """An optional query filter that must be one of `choices`, or a 400 naming it."""
    if raw is not None and raw not in choices:
        raise ApiError(400, "invalid_parameter", f"{name!r} must be one of "
                       + ", ".join(choices) + ".", param=name)
    return raw


class IdConverter(BaseConverter):
    """`<id:name>`: what Sluice's ids are made of; any other path segment is a 404."""

    regex = r"[A-Za-z0-9_-]{1,100}"


def install_id_converter(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
