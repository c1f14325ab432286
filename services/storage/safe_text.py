"""Text the databases can store: no lone UTF-16 surrogates (UTF-8 cannot encode them)
and no NUL (PostgreSQL's text type refuses it). Requests with such text are refused
(services/web/body.py); model output is kept, with U+FFFD in place of each."""
from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def unstorable_at(text: str) -> int | None:
    """Where the first character a database cannot store is in `text`, or None."""
    if text.isascii():  # the common case, and a quick one: only NUL can be wrong here
        at = text.find("\x00")
        return None if at < 0 else at
    found = _UNSTORABLE.search(text)
    return None if found is None else found.start()


def storable(text: str) -> str:
    """`text`, with every character a database cannot store replaced by U+FFFD."""
    if unstorable_at(text) is None:
        return text
    return _UNSTORABLE.sub(REPLACEMENT, text)
