"""Webhook deliveries: signed, sent only to public addresses, retried on a schedule."""
from __future__ import annotations

from .signing import new_message_id, new_secret, signature_headers

__all__ = ["new_message_id", "new_secret", "signature_headers"]
