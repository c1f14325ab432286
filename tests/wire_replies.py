"""Tool calls and plain answers in each provider's own wire format, for the fake upstream.

Each `*_calls` builder answers with one round of calls (several in parallel, in one
response), each `(name, arguments JSON)`, with each provider's own habits with ids:
Ollama sends none, the OpenAI-compatible server numbers them per answer (`call_0`,
`call_1`, … again in every round), Anthropic and Responses send fresh ones. Each
`*_text` builder answers with text. Every reply reports 4 output tokens where the
format has usage.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from .fake_upstream import Reply, openai_text_reply

Call = tuple[str, str]  # (tool name, arguments as JSON text)
OSLO = '{"city": "Oslo"}'
_ids = itertools.count()


def _sse(*events: tuple[str | None, dict]) -> Reply:
    frames = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
              for name, data in events]
    return Reply("".join(frames).encode())


def openai_calls(*calls: Call, text: str | None = None) -> Reply:
    """A compatible server that numbers calls per answer: `call_0` in every round. The
    pieces of each call come apart (id and name first, then the arguments); `text`
    comes before them."""
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}}]}]
    for index, (name, arguments) in enumerate(calls):
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "id": f"call_{index}", "type": "function",
             "function": {"name": name, "arguments": ""}}]}}]})
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": index, "function": {"arguments": arguments}}]}}]})
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return Reply(body.encode())


def _anthropic(blocks: list[tuple[dict, dict]], stop: str) -> Reply:
    events: list[tuple[str | None, dict]] = [("message_start", {
        "type": "message_start", "message": {"id": "msg_01", "type": "message",
                                             "role": "assistant", "content": [],
                                             "usage": {"input_tokens": 10}}})]
    for index, (start, delta) in enumerate(blocks):
        events += [("content_block_start", {"type": "content_block_start", "index": index,
                                            "content_block": start}),
                   ("content_block_delta", {"type": "content_block_delta", "index": index,
                                            "delta": delta}),
                   ("content_block_stop", {"type": "content_block_stop", "index": index})]
    events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                  "usage": {"output_tokens": 4}}),
               ("message_stop", {"type": "message_stop"})]
    return _sse(*events)


def anthropic_calls(*calls: Call) -> Reply:
    return _anthropic([({"type": "tool_use", "id": f"toolu_01{next(_ids):06d}", "name": name,
                         "input": {}},
                        {"type": "input_json_delta", "partial_json": arguments})
                       for name, arguments in calls], "tool_use")


def anthropic_text(text: str) -> Reply:
    return _anthropic([({"type": "text", "text": ""}, {"type": "text_delta", "text": text})],
                      "end_turn")


def _ndjson(*lines: dict) -> Reply:
    return Reply("".join(json.dumps(line) + "\n" for line in lines).encode(),
                 content_type="application/x-ndjson")


def _ollama_end() -> dict:
    return {"message": {"role": "assistant", "content": ""}, "done": True,
            "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 4}


def ollama_calls(*calls: Call) -> Reply:
    """Ollama's tool calls carry no id, and their arguments are an object."""
    return _ndjson({"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": name, "arguments": json.loads(arguments)}}
        for name, arguments in calls]}, "done": False}, _ollama_end())


def ollama_text(text: str) -> Reply:
    return _ndjson({"message": {"role": "assistant", "content": text}, "done": False},
                   _ollama_end())


def responses_calls(*calls: Call) -> Reply:
    events: list[tuple[str | None, dict]] = []
    done_items = []
    for index, (name, arguments) in enumerate(calls):
        item = {"id": f"fc_{next(_ids)}", "type": "function_call", "status": "in_progress",
                "call_id": f"call_R{next(_ids)}", "name": name, "arguments": ""}
        done = {**item, "status": "completed", "arguments": arguments}
        done_items.append(done)
        events += [
            ("response.output_item.added", {"type": "response.output_item.added",
                                            "output_index": index, "item": item}),
            ("response.function_call_arguments.delta", {
                "type": "response.function_call_arguments.delta", "item_id": item["id"],
                "output_index": index, "delta": arguments}),
            ("response.output_item.done", {"type": "response.output_item.done",
                                           "output_index": index, "item": done})]
    events.append(("response.completed", {"type": "response.completed", "response": {
        "status": "completed", "output": done_items,
        "usage": {"input_tokens": 9, "output_tokens": 4}}}))
    return _sse(*events)


def responses_text(text: str) -> Reply:
    return _sse(
        ("response.output_text.delta", {"type": "response.output_text.delta",
                                        "item_id": "msg_1", "delta": text}),
        ("response.completed", {"type": "response.completed", "response": {
            "status": "completed", "usage": {"input_tokens": 9, "output_tokens": 4}}}))


# provider -> (a round of parallel calls, a text answer)
ROUNDS: dict[str, tuple[Callable[..., Reply], Callable[[str], Reply]]] = {
    "openai": (openai_calls, openai_text_reply),
    "anthropic": (anthropic_calls, anthropic_text),
    "ollama": (ollama_calls, ollama_text),
    "openai-responses": (responses_calls, responses_text),
}
