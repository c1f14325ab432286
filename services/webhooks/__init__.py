"""Webhook deliveries: signed, sent only to public addresses, retried on a schedule."""
from __future__ import annotations

from .guard import HostUnresolvable, PinnedTarget, Target, UrlRefused, check_url, resolve
from .schedule import next_delay, parse_schedule
from .sender import DeliveryAttempt, post
from .signing import new_message_id, new_secret, signature_headers

__all__ = ["DeliveryAttempt", "HostUnresolvable", "PinnedTarget", "Target", "UrlRefused",
           "check_url", "new_message_id", "new_secret", "next_delay", "parse_schedule", "post",
           "resolve", "signature_headers"]
