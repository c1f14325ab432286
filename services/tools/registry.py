"""Server tools: functions Sluice runs itself when a model calls them, and where they
come from.

A tool is one decorated function:

    @server_tool(description="The current time.", parameters={"type": "object"})
    def current_time(context: ToolContext, arguments: dict) -> str: ...

in a module of `services.tools.builtin`, a module SLUICE_TOOL_MODULES names, or a
package's entry point in the group `sluice.tools` (pointing at such a module, or
at one decorated function). `load_tools` collects them all at startup; a name
used twice, or one a provider would refuse, stops startup with the tool and where
it came from. The decorator keeps no list of its own: the decorated function
becomes a `ServerTool` in its module, and the loader finds it there.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..config import ConfigError
from ..providers import ToolSpec

# What every provider accepts as a function's name; caller tools follow the same rule.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENTRY_POINT_GROUP = "sluice.tools"
BUILTIN_PACKAGE = "services.tools.builtin"


class ToolError(Exception):
    """A failure a tool expects (a bad time zone, a refused URL): the message goes back
    to the model as the call's error, with no traceback in the log."""


@dataclass
class ToolContext:
    """What a tool may know of the call: whose it is, which thread, the database, and
    the event set when the answer is cancelled or the call runs out of time."""

    user_id: str
    thread_id: str | None  # None for an operation
    db: Any = None  # a services.storage.Database, or None where there is none
    allow_private: bool = False  # SLUICE_WEBHOOK_ALLOW_PRIVATE: fetch_url may go private
    cancelled: threading.Event = field(default_factory=threading.Event)


ToolFunction = Callable[[ToolContext, dict[str, Any]], Any]


@dataclass(frozen=True)
class ServerTool:
    """A tool Sluice runs: its name, what the model is told, and its limits."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema (2020-12) of the arguments object
    function: ToolFunction
    timeout: float = 10.0  # seconds
    max_output: int = 16000  # characters of result
    side_effects: bool = False  # True: it changes something outside Sluice

    @cached_property
    def validator(self) -> Draft202012Validator:
        """Checks a call's arguments; made once per tool, not per call."""
        return Draft202012Validator(self.parameters)

    def spec(self) -> ToolSpec:
        """The definition a provider shows the model."""
        return ToolSpec(name=self.name, description=self.description,
                        parameters=self.parameters)

    def __call__(self, context: ToolContext, arguments: dict[str, Any]) -> Any:
        """Run the function directly, unchecked (for tests and other tools)."""
        return self.function(context, arguments)


def server_tool(name: str | None = None, *, description: str, parameters: dict[str, Any],
                timeout: float = 10.0, max_output: int = 16000,
                side_effects: bool = False) -> Callable[[ToolFunction], ServerTool]:
    """Make a function `(context, arguments) -> str | dict | list` a server tool named
    `name` (the function's name by default); a schema that is not one fails at import."""
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        raise ValueError(f"server tool {name or '…'}: parameters is not a JSON Schema: "
                         f"{exc.message}") from None

    def wrap(function: ToolFunction) -> ServerTool:
        return ServerTool(name=name or function.__name__, description=description,
                          parameters=parameters, function=function, timeout=timeout,
                          max_output=max_output, side_effects=side_effects)

    return wrap


class ToolRegistry:
    """The server tools of this process, by name."""

    def __init__(self) -> None:
        self._tools: dict[str, ServerTool] = {}
        self._origins: dict[str, str] = {}

    def add(self, tool: ServerTool, origin: str) -> None:
        """Register `tool`, found at `origin` (for error messages); a bad or taken name
        is a `ConfigError` that names both."""
        if not TOOL_NAME.match(tool.name):
            raise ConfigError(f"server tool {tool.name!r} from {origin}: a tool's name must "
                              "be 1-64 letters, digits, '_' or '-'")
        if tool.name in self._tools:
            raise ConfigError(f"server tool {tool.name!r} from {origin}: the name is taken "
                              f"by the tool from {self._origins[tool.name]}")
        self._tools[tool.name] = tool
        self._origins[tool.name] = origin

    def get(self, name: str) -> ServerTool | None:
        return self._tools.get(name)

    def names(self) -> tuple[str, ...]:
        """Every tool's name, sorted."""
        return tuple(sorted(self._tools))

    def only(self, names: Collection[str]) -> ToolRegistry:
        """The tools among `names`: what one answer may run (a call of any other is
        answered as a tool that does not exist)."""
        offered = ToolRegistry()
        for name in names:
            if name in self._tools:
                offered._tools[name] = self._tools[name]
                offered._origins[name] = self._origins[name]
        return offered

    def __contains__(self, name: object) -> bool:
        return name in self._tools


def load_tools(modules: Sequence[str]) -> ToolRegistry:
    """The built-in tools, those of the `modules` named (SLUICE_TOOL_MODULES) and those
    of the `sluice.tools` entry points; a `ConfigError` names any that cannot load."""
    registry = ToolRegistry()
    builtin = importlib.import_module(BUILTIN_PACKAGE)
    for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda info: info.name):
        _add_module(registry, _import(f"{BUILTIN_PACKAGE}.{info.name}", "built-in tools"))
    for module_name in modules:
        _add_module(registry, _import(module_name, "SLUICE_TOOL_MODULES"))
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {entry.name!r} ({entry.value})"
        try:
            loaded = entry.load()
        except Exception as exc:  # any import-time failure of a plug-in stops startup
            raise ConfigError(f"{origin} cannot be loaded: {exc}") from exc
        if isinstance(loaded, ModuleType):
            _add_module(registry, loaded)
        elif isinstance(loaded, ServerTool):
            registry.add(loaded, origin)
        else:
            raise ConfigError(f"{origin} is neither a module nor a server tool")
    return registry


def _import(module_name: str, setting: str) -> ModuleType:
    """The module, or a `ConfigError` naming it and the setting that asked for it."""
    try:
        return importlib.import_module(module_name)
    except Exception as exc:  # a syntax error, a missing module, a failing import
        raise ConfigError(f"{setting}: cannot import {module_name!r}: {exc}") from exc


def _add_module(registry: ToolRegistry, module: ModuleType) -> None:
    """Register the tools a module defines (not those it merely imports)."""
    found = [value for value in vars(module).values()
             if isinstance(value, ServerTool) and value.function.__module__ == module.__name__]
    unique = {id(tool): tool for tool in found}  # a tool bound to two names is one tool
    for tool in unique.values():
        registry.add(tool, f"module {module.__name__}")
