"""Text the databases can store: no lone UTF-16 surrogates (UTF-8 cannot encode them)
and no NUL (PostgreSQL's text type refuses it). Requests with such text are refused
(services/web/body.py); model output is kept, with U+FFFD in place of each."""
from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def storable(text: str) -> str:
    """`text`, with every character a database cannot store replaced by U+FFFD."""
    if text.isascii():
        return text.replace("\x00", REPLACEMENT) if "\x00" in text else text
    return _UNSTORABLE.sub(REPLACEMENT, text)
