"""Webhook deliveries: signed, sent only to public addresses, retried on a schedule."""
from __future__ import annotations

from .guard import HostUnresolvable, PinnedTarget, Target, UrlRefused, check_url, resolve
from .signing import new_message_id, new_secret, signature_headers

__all__ = ["HostUnresolvable", "PinnedTarget", "Target", "UrlRefused", "check_url",
           "new_message_id", "new_secret", "resolve", "signature_headers"]
