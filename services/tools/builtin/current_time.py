"""current_time: models do not know what time it is; this tells them, in any zone."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..registry import ToolContext, ToolError, server_tool

# Not strftime("%A"): that follows the process's locale, and the model should read English.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@server_tool(
    description="The current date and time (ISO 8601 with offset), the weekday and the time "
                "zone. Give an IANA time zone such as Europe/Paris; UTC by default.",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string", "minLength": 1, "maxLength": 64,
                                    "description": "An IANA time zone name, e.g. Asia/Tokyo"}},
        "additionalProperties": False,
    },
    timeout=2.0, max_output=500)
def current_time(context: ToolContext, arguments: dict[str, Any]) -> dict[str, str]:
    """Now in the zone asked for (UTC by default); an unknown zone is an error."""
    name = arguments.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # "../etc", "America", "a" * 300
        raise ToolError(f"unknown time zone {name!r}: give an IANA name such as "
                        "Europe/Berlin or America/New_York") from None
    now = datetime.now(zone)
    return {"time": now.isoformat(timespec="seconds"), "weekday": _WEEKDAYS[now.weekday()],
            "timezone": name}
