"""Tools: server tools Sluice runs itself (a registry loaded at startup, and the runner of
a turn's calls), and parsing of the tools and tool results a caller sends."""
from __future__ import annotations

from flask import Flask, current_app

from .caller import parse_tool_results, parse_tools, pending_tool_calls
from .registry import (ServerTool, ToolContext, ToolError, ToolRegistry, load_tools,
                       server_tool)
from .runner import ToolResult, run_calls

EXTENSION = "sluice.tools"

__all__ = ["ServerTool", "ToolContext", "ToolError", "ToolRegistry", "ToolResult", "init_app",
           "load_tools", "parse_tool_results", "parse_tools", "pending_tool_calls",
           "run_calls", "server_tool", "tool_registry"]


def init_app(app: Flask) -> None:
    """Load the built-in tools, SLUICE_TOOL_MODULES' and the `sluice.tools` entry points'
    (a ConfigError names a tool that cannot be loaded and where it came from)."""
    app.extensions[EXTENSION] = load_tools(app.config["SLUICE_TOOL_MODULES"])


def tool_registry(app: Flask | None = None) -> ToolRegistry:
    return (app or current_app).extensions[EXTENSION]
