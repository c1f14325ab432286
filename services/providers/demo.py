"""The offline demo model: deterministic Markdown built from the request, streamed
at a human-visible pace, so Sluice can be tried with no key and no network.

It uses tools the way a real model would, so a fresh machine shows the whole tool
loop: asked the time, it calls `current_time`; given arithmetic, `calculator`;
once the results are back, it answers with them."""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

from .base import (ChatMessage, ChatRequest, Completion, Finish, Provider, ProviderEvent,
                   ProviderStream, TextDelta, ToolCall, Usage, new_call_id)
from .errors import UnknownModelError

MODELS = ("echo",)
# The server tools the demo model is offered unless the models file says otherwise.
DEMO_TOOLS = ("current_time", "calculator")
_TOKEN = re.compile(r"\s*\S+")
_TIME_QUESTION = re.compile(r"\b(what time|the time|time is it|current time|time now)\b",
                            re.IGNORECASE)
_NUMBER = r"\(*\s*\d+(?:\.\d+)?\s*\)*"
_ARITHMETIC = re.compile(rf"(?<![\w.]){_NUMBER}(?:\s*(?:\*\*|[-+*/%^×÷])\s*-?{_NUMBER})+")


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _word_count(text: str) -> int:
    return len(text.split())


_DEMO_NOTE = "Sluice's demo model made this up; it does not read your text."


def _demo_value(schema: Any, name: str) -> Any:
    """A value of the schema's type, the same every time."""
    if not isinstance(schema, dict):
        return _DEMO_NOTE
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if not properties:
            return {"note": _DEMO_NOTE}
        return {key: _demo_value(value, key) for key, value in properties.items()}
    if kind == "array":
        return [_demo_value(schema.get("items"), name)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(
        kind, f"{name}: {_DEMO_NOTE}" if name else _DEMO_NOTE)


def demo_calls(request: ChatRequest) -> tuple[ToolCall, ...]:
    """The tools the demo model calls for the user's last message, if it was offered them."""
    last = request.messages[-1] if request.messages else None
    if last is None or last.role != "user":
        return ()
    offered = {tool.name for tool in request.tools}
    calls = []
    if "current_time" in offered and _TIME_QUESTION.search(last.content):
        calls.append(("current_time", {}))
    if "calculator" in offered:
        for expression in _ARITHMETIC.findall(last.content)[:3]:
            expression = expression.strip().replace("^", "**").replace("×", "*")
            calls.append(("calculator", {"expression": expression.replace("÷", "/")}))
    return tuple(ToolCall(new_call_id(), name, json.dumps(arguments))
                 for name, arguments in calls)


def _after_tools(messages: tuple[ChatMessage, ...]) -> str | None:
    """The answer once tool results are back: what each tool said, or None if the last
    turn is not a tool result."""
    results = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        results.append(message)
    if not results:
        return None
    calls = {call.id: call for m in messages for call in m.tool_calls}
    # After the first round's sentence, in the same message: start a new paragraph.
    lines = ["", "", "**This is Sluice's demo model.** Sluice ran these tools for me:", ""]
    for result in reversed(results):
        call = calls.get(result.tool_call_id or "")
        asked = f" `{json.loads(call.arguments).get('expression')}`" \
            if call is not None and call.name == "calculator" else ""
        answer = _excerpt(result.content, 200)
        lines.append(f"- `{result.name or 'a tool'}`{asked} answered: {answer}")
    lines += ["", "A real model would now write its answer from these results."]
    return "\n".join(lines)


# How Sluice numbers the excerpts of the user's documents in the system prompt
# (services/documents/retrieval.py): "[1] handbook.md (chunk 3)" and the text below it.
_EXCERPT = re.compile(r"^\[(\d+)\] (.+?) \(chunk (\d+)\)\n(.*?)(?=\n\n\[\d+\] |\Z)",
                      re.MULTILINE | re.DOTALL)


def _citations(messages: tuple[ChatMessage, ...]) -> list[str]:
    """The document excerpts the request carries, as the lines of a cited answer."""
    system = "\n".join(m.content for m in messages if m.role == "system")
    return [f"- [{number}] {_excerpt(_without_headings(text), 120)} — *{name}, chunk {chunk}*"
            for number, name, chunk, text in _EXCERPT.findall(system)]


def _without_headings(text: str) -> str:
    return " ".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _calls_preamble(calls: tuple[ToolCall, ...]) -> str:
    names = [f"`{name}`" for name in dict.fromkeys(call.name for call in calls)]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"Let me ask Sluice's {listed} tool{'s' if len(names) > 1 else ''}."


def demo_answer(request: ChatRequest) -> str:
    """The demo model's whole answer to `request`; the same request gives the same text.
    Asked for JSON (an operation's output), it answers with JSON of the schema's shape."""
    if request.json_schema is not None:
        return json.dumps(_demo_value(request.json_schema, ""), indent=2)
    after_tools = _after_tools(request.messages)
    if after_tools is not None:
        return after_tools
    prompt = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    words = re.findall(r"[\w'’-]+", prompt)
    longest = max(words, key=len) if words else "(none)"
    turns = sum(1 for m in request.messages if m.role == "user")
    return "\n".join([
        "**This is Sluice's demo model**, an offline stand-in for a real LLM. "
        "It does not understand you: it builds this answer from your message so you "
        "can watch streaming work without an API key.",
        "",
        f"> {_excerpt(prompt) or '(an empty message)'}",
        "",
        "### What I noticed",
        f"- Your message has **{len(words)} words** and {len(prompt)} characters.",
        f"- Its longest word is `{longest}`.",
        f"- This is turn {turns} of this thread.",
        "",
        *(["### From your documents",
           "Sluice searched your documents and gave me these excerpts:",
           *citations, ""] if (citations := _citations(request.messages)) else []),
        "### What is happening right now",
        "1. Sluice stored your message before calling any model.",
        "2. A producer is generating this answer and appending each piece to the "
        "stream's event log, one event at a time.",
        "3. Your connection only *subscribes* to that log. Close it and the answer "
        "still completes and is saved; reconnect with `Last-Event-ID` and you pick up "
        "exactly where you left off.",
        "4. `POST /api/v1/streams/<id>/cancel` stops it half-way and keeps the text so far.",
        "",
        "### Try a real model",
        "Set `OPENAI_API_KEY` and `LLM_MODEL=openai/gpt-4o-mini`, or point "
        "`OPENAI_BASE_URL` at any OpenAI-compatible server, and ask again.",
    ])


def _reply(request: ChatRequest) -> tuple[str, tuple[ToolCall, ...]]:
    """What the demo model says to `request`, and the tools it calls."""
    calls = demo_calls(request)
    return (_calls_preamble(calls) if calls else demo_answer(request)), calls


def _within_max_tokens(request: ChatRequest, text: str, calls: tuple[ToolCall, ...]
                       ) -> tuple[str, tuple[ToolCall, ...], str]:
    """The reply as a model with the request's `max_tokens` gives it: cut there, before
    any tool call, and finished `length` (else `tool_calls` or `stop`)."""
    tokens = _TOKEN.findall(text)
    if request.max_tokens is None or len(tokens) <= request.max_tokens:
        return text, calls, "tool_calls" if calls else "stop"
    return "".join(tokens[:request.max_tokens]), (), "length"


class DemoProvider(Provider):
    """Streams `demo_answer` word by word at `tokens_per_second`."""

    name = "demo"

    def __init__(self, tokens_per_second: float = 30.0) -> None:
        self.delay = 1.0 / tokens_per_second

    def check_model(self, model: str) -> None:
        if model not in MODELS:
            raise UnknownModelError(
                f"the demo provider has no model {model!r}; it has: "
                + ", ".join(f"demo/{name}" for name in MODELS))

    def models(self) -> list[dict[str, object]]:
        return [{"id": f"demo/{name}", "provider": self.name, "streaming": True}
                for name in MODELS]

    def complete(self, request: ChatRequest) -> Completion:
        text, calls, finish = _within_max_tokens(request, *_reply(request))
        return Completion(text=text, finish_reason=finish, tool_calls=calls,
                          usage=self._usage(request, text))

    def stream(self, request: ChatRequest) -> ProviderStream:
        self.check_model(request.model)
        stop = threading.Event()
        return ProviderStream(self._events(request, stop), stop.set)

    def _events(self, request: ChatRequest, stop: threading.Event) -> Iterator[ProviderEvent]:
        text, calls, finish = _within_max_tokens(request, *_reply(request))
        for token in _TOKEN.findall(text):
            # Waiting on the event instead of sleeping makes close() take effect at once.
            if stop.wait(self.delay):
                return
            yield TextDelta(token)
        yield from calls
        yield self._usage(request, text)
        yield Finish(finish)

    @staticmethod
    def _usage(request: ChatRequest, answer: str) -> Usage:
        prompt_words = sum(_word_count(m.content) for m in request.messages)
        return Usage(input_tokens=prompt_words, output_tokens=len(_TOKEN.findall(answer)))
