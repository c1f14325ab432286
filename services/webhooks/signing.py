"""Signing webhook deliveries by the Standard Webhooks scheme (standardwebhooks.com).

A receiver checks `webhook-signature` against HMAC-SHA256 of `id.timestamp.body`
with the secret it was shown, and refuses old timestamps, so a captured delivery
cannot be replayed later. Several secrets sign one delivery while a user rotates
theirs: the receiver accepts the delivery if any one of the signatures matches.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from secrets import token_bytes, token_urlsafe

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MESSAGE_ID_PREFIX = "msg_"


def new_secret() -> str:
    """A fresh signing secret, written the way Standard Webhooks libraries read it."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(SECRET_BYTES)).decode("ascii")


def new_message_id() -> str:
    """A delivery's id: made once per job delivery and kept across its retries, so a
    receiver can tell a retry from a new delivery."""
    return MESSAGE_ID_PREFIX + token_urlsafe(18)


def secret_key(secret: str) -> bytes:
    """The HMAC key a `whsec_…` secret stands for; ValueError if it is not one."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    if encoded == secret:
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a delivery with one secret."""
    signed = f"{message_id}.{timestamp}.".encode("ascii") + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _is_header_token(text: str) -> bool:
    """Printable ASCII without spaces: safe in a header and in the signed `id.` prefix."""
    return bool(text) and all("!" <= char <= "~" for char in text)


def signature_headers(secrets: Sequence[str], message_id: str, timestamp: int,
                      body: bytes) -> dict[str, str]:
    """The headers of a signed delivery of `body`: one signature per secret given."""
    if isinstance(secrets, str):
        raise TypeError("secrets is a list of secrets, not one secret")
    if not secrets:
        raise ValueError("a delivery needs at least one secret to be signed with")
    if not _is_header_token(message_id):
        raise ValueError(f"a message id is printable ASCII without spaces, got {message_id!r}")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError("the timestamp is whole seconds since the epoch (an int)")
    signatures = " ".join(sign(secret, message_id, timestamp, body) for secret in secrets)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
