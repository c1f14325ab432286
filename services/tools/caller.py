"""Tools in a message request: names of server tools, function definitions the caller
runs, and the caller's results for the calls the model made. Parsed and checked before
anything is stored."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ..errors import ApiError
from ..providers import ToolSpec
from .registry import TOOL_NAME, ToolRegistry


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_tools", message)


def _function_spec(item: dict[str, Any]) -> ToolSpec:
    function = item.get("function")
    if item.get("type") != "function" or not isinstance(function, dict):
        raise _bad('Each tool must be {"type": "function", "function": {"name", …}}.')
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise _bad("A tool's name must be 1-64 letters, digits, '_' or '-'.")
    description = function.get("description", "")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(description, str) or not isinstance(parameters, dict):
        raise _bad(f"Tool {name!r}: 'description' must be text and 'parameters' an object.")
    _check_parameters(name, parameters)
    return ToolSpec(name=name, description=description, parameters=parameters)


def _check_parameters(name: str, parameters: dict[str, Any]) -> None:
    """A 400 for a schema the providers would refuse after the stream began: every one
    takes only an object's schema, and a valid one."""
    if parameters.get("type") != "object":
        raise _bad(f"Tool {name!r}: 'parameters' must be a JSON Schema with \"type\": "
                   "\"object\" (the arguments are always an object).")
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as exc:
        raise _bad(f"Tool {name!r}: 'parameters' is not a valid JSON Schema: "
                   f"{exc.message[:200]}.") from None


def parse_tools(raw: Any, registry: ToolRegistry) -> tuple[tuple[ToolSpec, ...], tuple[str, ...]]:
    """The tools a request lists: the definitions of those the caller runs, and the
    names of the server tools (in `registry`) that Sluice runs itself."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise _bad("'tools' must be a list.")
    specs, server_names = [], []
    for item in raw:
        if isinstance(item, str):
            server_names.append(_server_tool_name(item, registry))
        elif isinstance(item, dict):
            specs.append(_function_spec(item))
        else:
            raise _bad("Each tool must be a server tool's name or a function definition object.")
    check_function_names(specs, server_names)
    names = [spec.name for spec in specs] + server_names
    if len(set(names)) != len(names):
        raise _bad("Two tools have the same name.")
    return tuple(specs), tuple(server_names)


def check_function_names(specs: Sequence[ToolSpec], server_names: Collection[str]) -> None:
    """A 400 if one of the caller's functions has the name of a server tool offered
    with it: a call of that name would be Sluice's to run."""
    taken = sorted({spec.name for spec in specs} & set(server_names))
    if taken:
        raise _bad(f"The function {taken[0]!r} has the name of a server tool; rename it.")


def _server_tool_name(name: str, registry: ToolRegistry) -> str:
    """`name` if the registry has such a tool; `400 unknown_tool` listing those it has."""
    if name in registry:
        return name
    available = ", ".join(registry.names()) or "none"
    raise ApiError(400, "unknown_tool",
                   f"There is no server tool {name!r} here; the server tools are: {available}.")


def parse_tool_results(raw: Any, pending: Sequence[dict[str, str]]) -> list[tuple[str, str]]:
    """(tool_call_id, content) pairs answering exactly the calls in `pending`."""
    if not isinstance(raw, list) or not raw:
        raise _bad("'tool_results' must be a non-empty list.")
    results = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("tool_call_id"), str) \
                or not isinstance(item.get("content"), str):
            raise _bad('Each tool result must be {"tool_call_id": "…", "content": "…"}.')
        results.append((item["tool_call_id"], item["content"]))
    expected = sorted(call["id"] for call in pending)
    if not expected:
        raise ApiError(409, "no_pending_tool_calls",
                       "The last answer in this thread did not ask for any tool calls.")
    if sorted(call_id for call_id, _ in results) != expected:
        raise _bad("'tool_results' must answer each pending tool call exactly once: "
                   + ", ".join(expected) + ".")
    return results
