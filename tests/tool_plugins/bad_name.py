"""A module whose tool has a name no provider accepts: loading it must stop startup."""
from __future__ import annotations

from typing import Any

from services.tools import ToolContext, server_tool


@server_tool("roll dice!", description="A bad name.", parameters={"type": "object"})
def bad(context: ToolContext, arguments: dict[str, Any]) -> str:
    return ""
