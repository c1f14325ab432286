"""Server tools for the answer-loop tests: one that answers, and one for each way a tool
can fail (bad arguments are the schema's business), plus one that waits for a cancel."""
from __future__ import annotations

import threading
import time
from typing import Any

from services.tools import ToolContext, ToolError, server_tool

# Set by `slow` when it saw the answer's cancel: the tool got its signal.
SLOW_SAW_CANCEL = threading.Event()
_KEY = {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"],
        "additionalProperties": False}


@server_tool(description="Look a key up.", parameters=_KEY)
def lookup(context: ToolContext, arguments: dict[str, Any]) -> str:
    # Results begin with the tool's name: tests/wire_checks.py pairs them by it.
    return f"lookup: {arguments['key']} is fine"


@server_tool(description="Always fails.", parameters={"type": "object"})
def boom(context: ToolContext, arguments: dict[str, Any]) -> str:
    raise ToolError("boom: the gauge is broken")


@server_tool(description="Takes too long.", parameters={"type": "object"}, timeout=0.3)
def sleepy(context: ToolContext, arguments: dict[str, Any]) -> str:
    time.sleep(2)
    return "sleepy: awake"


@server_tool(description="Says too much.", parameters={"type": "object"}, max_output=100)
def flood(context: ToolContext, arguments: dict[str, Any]) -> str:
    return "flood: " + "x" * 1000


@server_tool(description="Waits until cancelled.", parameters={"type": "object"}, timeout=30)
def slow(context: ToolContext, arguments: dict[str, Any]) -> str:
    if context.cancelled.wait(20):
        SLOW_SAW_CANCEL.set()
    return "slow: done"


# Opened by a test when it has done what it must while `gate` runs.
GATE = threading.Event()


@server_tool(description="Waits until the test opens the gate.", parameters={"type": "object"},
             timeout=15)
def gate(context: ToolContext, arguments: dict[str, Any]) -> str:
    GATE.wait(10)
    return "gate: open"
