"""One operator tool, as SLUICE_TOOL_MODULES would name it: proof that such a module loads."""
from __future__ import annotations

from typing import Any

from services.tools import ToolContext, server_tool


@server_tool(description="Always rolls a four.", parameters={"type": "object"})
def roll_dice(context: ToolContext, arguments: dict[str, Any]) -> str:
    return "4"
