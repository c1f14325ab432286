"""Reading a request's JSON body within limits, so that no body of any shape reaches a
service half-read, too big, too deep or with text that cannot be stored.

Every failure is an `ApiError` with a 4xx status: 413 past the size limit (for
chunked bodies too, which WSGI servers do not measure up front), 400 for a body
whose chunked framing is broken, that is not UTF-8, not JSON, nested too deeply,
or whose text holds characters no database can store (lone UTF-16 surrogates,
NUL), and for numbers JSON cannot carry (NaN, Infinity, overflow).
"""
from __future__ import annotations

import json
import math
from typing import Any, BinaryIO

from ..errors import ApiError
from ..storage.safe_text import unstorable_at

# Deeper than any real request needs, shallow enough for every later step (storage,
# provider calls, schema checks) to walk without recursion trouble.
MAX_JSON_DEPTH = 64
_READ_SIZE = 64 * 1024

try:  # the server's own framing errors, raised while the body is read
    from gunicorn.http.errors import ParseException as _FramingError
except ImportError:  # pragma: no cover - another WSGI server
    class _FramingError(Exception):  # type: ignore[no-redef]
        pass


def read_raw_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, whole, or a 413 once it is longer than `limit` bytes."""
    length = _content_length(environ)
    if length is not None and length > limit:
        raise _too_large(limit)
    chunked = length is None and environ.get("wsgi.input_terminated", False)
    if not length and not chunked:
        return b""
    stream: BinaryIO = environ["wsgi.input"]
    wanted = length if length is not None else limit + 1
    pieces, total = [], 0
    try:
        while total < wanted:
            piece = stream.read(min(_READ_SIZE, wanted - total))
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
    except (_FramingError, OSError, ValueError) as exc:
        raise ApiError(400, "malformed_body",
                       "The request body is not framed correctly (Content-Length or "
                       "chunked encoding).") from exc
    if total > limit:
        raise _too_large(limit)
    if length is not None and total < length:
        raise ApiError(400, "malformed_body", "The request body ended before its Content-Length.")
    return b"".join(pieces)


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH", "")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "malformed_body", "Content-Length must be a number of bytes.")
    return int(raw)


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large",
                    f"The request body is larger than this server accepts ({limit} bytes).")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """`raw` as a JSON object whose every string can be stored; a 400 saying why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "invalid_encoding",
                       f"The request body is not valid UTF-8 (at byte {exc.start}).") from exc
    try:
        body = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    check_json_value(body)
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _too_deep() -> ApiError:
    return ApiError(400, "too_deeply_nested",
                    f"The request body nests objects or arrays more than {MAX_JSON_DEPTH} deep.")


def check_json_value(value: Any) -> None:
    """Walk a parsed JSON value without recursion: bounded depth, storable strings
    (keys too), finite numbers. Raises a 400 `ApiError` at the first problem."""
    pending: list[tuple[Any, int, str]] = [(value, 0, "")]
    while pending:
        item, depth, where = pending.pop()
        if isinstance(item, str):
            check_text(item, where or "body")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ApiError(400, "invalid_number", f"{where or 'A number'} is out of range.")
        elif isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise _too_deep()
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                path = f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"
                if isinstance(key, str):
                    check_text(key, f"A key in {where or 'the body'}")
                pending.append((child, depth + 1, path.lstrip(".")))


def check_text(text: str, where: str) -> None:
    """A 400 unless `text` can be stored as is (services/storage/safe_text.py)."""
    at = unstorable_at(text)
    if at is None:
        return
    bad = text[at]
    raise _bad_text(where, "a NUL character" if bad == "\x00"
                    else f"a lone UTF-16 surrogate (\\u{ord(bad):04x})")


def _bad_text(where: str, what: str) -> ApiError:
    return ApiError(400, "invalid_text", f"{where[:80]!s} contains {what}, which is not text.")


def read_json_body(environ: dict[str, Any], limit: int) -> dict[str, Any]:
    """The request's JSON object within `limit` bytes; an empty body is `{}`."""
    raw = read_raw_body(environ, limit)
    return parse_json_object(raw) if raw.strip() else {}
