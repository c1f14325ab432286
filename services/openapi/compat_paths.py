"""The OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`) and Prometheus'
`/metrics`, in the wire formats their clients expect.

Under `/v1` every error has OpenAI's shape, `{"error": {"message", "type", "param",
"code"}}`, which holds Sluice's two fields too, so the official SDKs raise their own
exceptions for it.
"""
from __future__ import annotations

from typing import Any

from .builders import (Errors, Schema, closed, errors, json_body, json_content,
                       json_response, nullable, operation, ref)

OPENAI_ERROR = closed({"error": closed({
    "message": {"type": "string"},
    "type": {"enum": ["invalid_request_error", "rate_limit_error", "server_error"]},
    "param": nullable({"type": "string", "description": "The request field at fault."}),
    "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
})}, description="An error under `/v1`, as OpenAI writes them.")

CHAT_MESSAGE: Schema = {
    "type": "object", "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": nullable({"type": ["string", "array"],
                             "description": "Text, or an array of `{\"type\": \"text\"}` "
                                            "parts."}),
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}

COMPLETION_REQUEST: Schema = {
    "type": "object", "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1, "examples": ["demo/echo"]},
        "messages": {"type": "array", "minItems": 1, "items": ref("ChatCompletionMessage")},
        "stream": nullable({"type": "boolean"}),
        "stream_options": nullable({"type": "object", "properties": {
            "include_usage": {"type": "boolean"}}}),
        "tools": nullable({"type": "array", "items": ref("FunctionTool")}),
        "tool_choice": {"description": "`auto` or `none`; others are refused."},
        "max_tokens": nullable({"type": "integer", "minimum": 1}),
        "max_completion_tokens": nullable({"type": "integer", "minimum": 1}),
        "temperature": nullable({"type": "number", "minimum": 0, "maximum": 2}),
    },
    "description": "What Sluice cannot honour (`n` > 1, `logprobs`, `stop`, a JSON "
                   "`response_format`, …) is refused with a 400 naming the field; fields "
                   "that only tune or label a request are ignored.",
}

OPENAI_TOOL_CALL = closed({
    "id": {"type": "string"}, "type": {"const": "function"},
    "function": closed({"name": {"type": "string"}, "arguments": {"type": "string"}}),
})

COMPLETION = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices", "usage"],
    "properties": {
        "id": {"type": "string", "pattern": "^chatcmpl-"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer", "description": "Unix seconds."},
        "model": {"type": "string", "description": "As the request named it."},
        "system_fingerprint": {"type": "null"},
        "choices": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "required": ["index", "message", "finish_reason"],
            "properties": {
                "index": {"const": 0},
                "message": {"type": "object", "required": ["role", "content"], "properties": {
                    "role": {"const": "assistant"},
                    "content": nullable({"type": "string"}),
                    "refusal": {"type": "null"},
                    "tool_calls": {"type": "array", "items": ref("OpenAIToolCall")},
                    "reasoning_content": {"type": "string"},
                }},
                "logprobs": {"type": "null"},
                "finish_reason": {"enum": ["stop", "length", "tool_calls", "content_filter"]},
            }}},
        "usage": ref("TokenUsage"),
    },
}

TOKEN_USAGE = closed({"prompt_tokens": {"type": "integer", "minimum": 0},
                     "completion_tokens": {"type": "integer", "minimum": 0},
                     "total_tokens": {"type": "integer", "minimum": 0}},
                    description="0 where the provider reported nothing.")

CHUNK = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string", "pattern": "^chatcmpl-"},
        "object": {"const": "chat.completion.chunk"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "system_fingerprint": {"type": "null"},
        "choices": {"type": "array", "maxItems": 1, "items": {
            "type": "object", "required": ["index", "delta", "finish_reason"],
            "properties": {
                "index": {"const": 0},
                "delta": {"type": "object", "properties": {
                    "role": {"const": "assistant"},
                    "content": {"type": "string"},
                    "reasoning_content": {"type": "string"},
                    "refusal": {"type": "null"},
                    "tool_calls": {"type": "array", "items": closed({
                        "index": {"type": "integer", "minimum": 0},
                        **OPENAI_TOOL_CALL["properties"]})},
                }},
                "logprobs": {"type": "null"},
                "finish_reason": nullable({"enum": ["stop", "length", "tool_calls",
                                                    "content_filter"]}),
            }}},
        "usage": nullable(ref("TokenUsage")),
    },
    "description": "One piece of a streamed completion. With `stream_options.include_usage` "
                   "every chunk has `usage: null` but the last, which has no choices.",
}

# An event of a streamed completion: a chunk, an error in the place of one (the answer
# failed), or the `[DONE]` that ends the stream.
COMPLETION_EVENT = {
    "type": "object", "required": ["data"],
    "properties": {"data": {"anyOf": [
        {"const": "[DONE]"},
        {"type": "string", "contentMediaType": "application/json",
         "contentSchema": {"anyOf": [ref("ChatCompletionChunk"), ref("OpenAIError")]}}]}},
}

OPENAI_MODEL = closed({"id": {"type": "string"}, "object": {"const": "model"},
                       "created": {"type": "integer"}, "owned_by": {"type": "string"}})

COMPONENTS: dict[str, Schema] = {
    "OpenAIError": OPENAI_ERROR, "ChatCompletionMessage": CHAT_MESSAGE,
    "ChatCompletionRequest": COMPLETION_REQUEST, "ChatCompletion": COMPLETION,
    "OpenAIToolCall": OPENAI_TOOL_CALL, "OpenAIModel": OPENAI_MODEL, "TokenUsage": TOKEN_USAGE,
    "ChatCompletionChunk": CHUNK, "ChatCompletionEvent": COMPLETION_EVENT,
}


def _openai_errors(found: Errors) -> dict[str, Any]:
    """The same statuses and codes as Sluice's routes, in OpenAI's error shape."""
    answers = found.responses()
    for answer in answers.values():
        answer["content"] = json_content(ref("OpenAIError"))
    return answers


def _chat_completions() -> dict[str, Any]:
    found = errors(reads_body=True, changes=True, own={
        400: ("invalid_value", "invalid_type", "missing_required_parameter",
              "unsupported_value", "unsupported_parameter"),
        403: ("model_not_allowed",), 404: ("model_not_found",),
        429: ("rate_limited", "too_many_streams"),
        500: ("internal_error",), 502: ("upstream_error",),
        503: ("overloaded", "unavailable", "shutting_down"), 504: ("timeout",)})
    op = operation(
        "createChatCompletion", "Chat Completions, as OpenAI's", "openai",
        {"200": {"description": "Without `stream`: one `chat.completion`. With it: "
                                "`chat.completion.chunk` objects as `data:` lines, then "
                                "`data: [DONE]`.",
                 "content": {**json_content(ref("ChatCompletion")),
                             "text/event-stream": {"schema": ref("ChatCompletionEvent")}}}},
        found, body=json_body(ref("ChatCompletionRequest")),
        description="Nothing is stored. A failed answer is an error status (a partial "
                    "answer is not a completion); 429 and 5xx are what the SDKs retry. A "
                    "streaming client that disconnects cancels its answer.")
    op["responses"].update(_openai_errors(found))
    return {"post": op}


def _openai_models() -> dict[str, Any]:
    found = errors()
    op = operation("listOpenAIModels", "The models, as OpenAI lists them", "openai",
                   {"200": json_response("The same models as `GET /api/v1/models`.", closed({
                       "object": {"const": "list"},
                       "data": {"type": "array", "items": ref("OpenAIModel")}}))}, found)
    op["responses"].update(_openai_errors(found))
    return {"get": op}


def _metrics() -> dict[str, Any]:
    return {"get": operation(
        "metrics", "Prometheus metrics", "service",
        {"200": {"description": "The text exposition format, summed over every worker.",
                 "content": {"text/plain": {"schema": {"type": "string"}}}}},
        errors(public=True, own={
            401: ("unauthorized",), 403: ("forbidden",)}),
        description="With `SLUICE_METRICS_TOKEN` set, for its bearer only (401 otherwise); "
                    "without it, for clients on this host that no proxy relayed (403 "
                    "otherwise).",
        security=[{"metricsToken": []}, {}])}


def paths() -> dict[str, Any]:
    """The path items of `/v1` and `/metrics`, by path."""
    return {"/v1/chat/completions": _chat_completions(), "/v1/models": _openai_models(),
            "/metrics": _metrics()}

