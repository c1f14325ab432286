"""Tools: server tools Sluice runs itself (a registry loaded at startup, and the runner of
a turn's calls), and parsing of the tools and tool results a caller sends."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .. import providers
from ..config import ConfigError

from .caller import check_function_names, parse_tool_results, parse_tools
from .registry import (ServerTool, ToolContext, ToolError, ToolRegistry, load_tools,
                       server_tool)
from .runner import ToolResult, run_calls

EXTENSION = "sluice.tools"

__all__ = ["ServerTool", "ToolContext", "ToolError", "ToolRegistry", "ToolResult", "init_app",
           "check_function_names", "load_tools", "parse_tool_results", "parse_tools", "run_calls",
           "server_tool", "Toolbox", "toolbox"]


@dataclass(frozen=True)
class Toolbox:
    """The app's server tools, and whether `fetch_url` may reach private addresses
    (SLUICE_WEBHOOK_ALLOW_PRIVATE, as for webhooks)."""

    registry: ToolRegistry
    allow_private: bool = False


def init_app(app: Flask) -> None:
    """Load the built-in tools, SLUICE_TOOL_MODULES' and the `sluice.tools` entry points'
    (a ConfigError names a tool that cannot be loaded and where it came from), and check
    that every tool the models file offers a model exists."""
    registry = load_tools(app.config["SLUICE_TOOL_MODULES"])
    app.extensions[EXTENSION] = Toolbox(registry, app.config["SLUICE_WEBHOOK_ALLOW_PRIVATE"])
    for model, settings in providers.registry(app).configured.items():
        unknown = [name for name in settings.tools if name not in registry]
        if unknown:
            raise ConfigError(f"SLUICE_MODELS_FILE: {model}.tools names {', '.join(unknown)}, "
                              f"which is not a server tool here; known: "
                              f"{', '.join(registry.names())}")


def toolbox(app: Flask | None = None) -> Toolbox:
    return (app or current_app).extensions[EXTENSION]
