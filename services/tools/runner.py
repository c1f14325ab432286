"""Running the server tool calls of one model turn: all at once, each bounded in time
and size, none able to break the answer.

Every call gets a thread of its own (a greenlet under gevent's monkey-patching,
which is why no executor pool is used). Whatever a call does wrong (an unknown
tool, arguments that are not what its schema asks for, an exception, too long a
run, too much output) becomes an error result that goes back to the model; the
other calls are unaffected. A cancelled answer stops waiting at once: the calls
still running see their `cancelled` event set and their results are dropped.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jsonschema.exceptions import best_match

from ..providers import ToolCall
from ..storage.safe_text import storable
from .registry import ServerTool, ToolContext, ToolError, ToolRegistry

logger = logging.getLogger(__name__)
# How often the wait for results looks at the answer's cancel event.
_CANCEL_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ToolResult:
    """How one call went: its result as text, or why it failed."""

    id: str
    name: str
    result: str | None
    error: str | None
    duration_ms: int

    def payload(self) -> dict[str, Any]:
        """The body of the `tool_result` event."""
        outcome = {"error": self.error} if self.error is not None else {"result": self.result}
        return {"id": self.id, "name": self.name, **outcome, "duration_ms": self.duration_ms}

    def content(self) -> str:
        """What the model is told the call returned."""
        return f"Error: {self.error}" if self.error is not None else (self.result or "")


@dataclass
class _Run:
    """One call in flight: its tool, its own cancel event and when it must end."""

    index: int
    call: ToolCall
    tool: ServerTool
    context: ToolContext
    started: float

    @property
    def deadline(self) -> float:
        return self.started + self.tool.timeout


def run_calls(registry: ToolRegistry, calls: Sequence[ToolCall], context: ToolContext,
              on_result: Callable[[ToolResult], None]) -> list[ToolResult]:
    """Run `calls` concurrently; `on_result` hears of each as it ends, in this thread.
    The results in the calls' order; once `context.cancelled` is set, those that had
    ended (each running tool is told, and its result is dropped)."""
    results: list[ToolResult | None] = [None] * len(calls)
    finished: queue.Queue[tuple[int, ToolResult]] = queue.Queue()
    running: dict[int, _Run] = {}
    for index, call in enumerate(calls):
        prepared = _prepare(registry, call)
        if isinstance(prepared, ToolResult):
            finished.put((index, prepared))
            continue
        run = _Run(index, call, prepared[0], replace(context, cancelled=threading.Event()),
                   time.monotonic())
        running[index] = run
        threading.Thread(target=_execute, args=(run, prepared[1], finished),
                         name=f"tool-{call.name}", daemon=True).start()
    while any(result is None for result in results):
        if context.cancelled.is_set():
            for run in running.values():
                run.context.cancelled.set()
            break
        for index, result in _collect(finished, running):
            if results[index] is None:  # a call that timed out may still answer: too late
                results[index] = result
                on_result(result)
    return [result for result in results if result is not None]


def _collect(finished: queue.Queue[tuple[int, ToolResult]],
             running: dict[int, _Run]) -> list[tuple[int, ToolResult]]:
    """The results that came within a short wait, and the calls past their deadline."""
    now = time.monotonic()
    overdue = [run for run in running.values() if run.deadline <= now]
    ended = []
    for run in overdue:
        run.context.cancelled.set()
        del running[run.index]
        ended.append((run.index, _failure(run.call, f"timed out after {run.tool.timeout:g}s",
                                          run.started)))
    wait = min([run.deadline for run in running.values()] + [now + _CANCEL_POLL_SECONDS])
    try:
        index, result = finished.get(timeout=max(wait - now, 0.001))
    except queue.Empty:
        return ended
    running.pop(index, None)
    return [*ended, (index, result)]


def _prepare(registry: ToolRegistry,
             call: ToolCall) -> tuple[ServerTool, dict[str, Any]] | ToolResult:
    """The call's tool and arguments, or the error result of a call that cannot run."""
    started = time.monotonic()
    tool = registry.get(call.name)
    if tool is None:
        return _failure(call, f"there is no server tool {call.name!r} in this answer", started)
    try:
        arguments = json.loads(call.arguments or "{}")
    except ValueError as exc:
        return _failure(call, f"the arguments are not valid JSON: {exc}", started)
    if not isinstance(arguments, dict):
        return _failure(call, "the arguments must be a JSON object", started)
    problem = best_match(tool.validator.iter_errors(arguments))
    if problem is not None:
        where = "".join(f"[{part!r}]" if isinstance(part, int) else f".{part}"
                        for part in problem.absolute_path).lstrip(".")
        field = f"argument {where!r}" if where else "the arguments"
        return _failure(call, f"{field}: {problem.message}", started)
    return tool, arguments


def _execute(run: _Run, arguments: dict[str, Any],
             finished: queue.Queue[tuple[int, ToolResult]]) -> None:
    """Run one call's function and put its result (or error result) on `finished`."""
    try:
        value = run.tool.function(run.context, arguments)
        result = _success(run, _as_text(value))
    except ToolError as exc:
        result = _failure(run.call, str(exc), run.started)
    except Exception as exc:  # a tool's bug must not end the answer: the model is told
        logger.exception("server tool %s failed", run.call.name)
        result = _failure(run.call, str(exc) or type(exc).__name__, run.started)
    finished.put((run.index, result))


def _as_text(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ToolError(f"the tool returned a value that is not JSON: {exc}") from None


def _success(run: _Run, text: str) -> ToolResult:
    """The result of a call that returned, unless it returned too much."""
    if len(text) > run.tool.max_output:
        return _failure(run.call, f"the result is {len(text)} characters long, over the "
                        f"limit of {run.tool.max_output}", run.started)
    # Stored as a message and sent back to the model: text any database can hold
    # (a fetched page or a plugin may carry NUL bytes or lone surrogates).
    return ToolResult(run.call.id, run.call.name, storable(text), None,
                      _elapsed_ms(run.started))


def _failure(call: ToolCall, error: str, started: float) -> ToolResult:
    return ToolResult(call.id, call.name, None, storable(error), _elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
