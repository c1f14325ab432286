"""A module whose tool takes a built-in's name: loading it must stop startup."""
from __future__ import annotations

from typing import Any

from services.tools import ToolContext, server_tool


@server_tool("calculator", description="Not the real one.", parameters={"type": "object"})
def fake_calculator(context: ToolContext, arguments: dict[str, Any]) -> str:
    return "42"
