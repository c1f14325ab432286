"""Chat completions as runs of the streaming core, with nothing stored.

A completion is a normal `StreamRun` (retries, fallbacks, deadlines, graceful
shutdown all apply) whose spec has no message or thread. Its response reads the
run's events from the log like any subscriber and re-encodes them as OpenAI
chunks. Unlike Sluice's own streams, and as with OpenAI, a client that hangs up
cancels its answer: nobody could resume it.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..auth import Identity
from ..errors import ApiError
from ..providers import ProviderRegistry, ResolvedModel, UnknownModelError
from ..sse import PING, encode_data, event_data
from ..storage.models import new_id
from ..streaming import RunSpec, StreamRun, Streaming, to_client
from ..streaming.subscribe import event_pages
from .answer import Answer, Envelope
from .request import parse_request

DONE = encode_data("[DONE]")
# What a failed non-streaming answer is answered with; the SDKs retry 429 and 5xx.
_FAILURE_STATUS = {"rate_limited": 429, "internal_error": 500, "overloaded": 503,
                   "interrupted": 503, "cancelled": 503, "unavailable": 503, "timeout": 504}
# When Sluice began listing its models: it cannot know when a provider made one.
_LISTED_SINCE = int(time.time())


@dataclass(frozen=True)
class StartedCompletion:
    run: StreamRun
    envelope: Envelope
    stream: bool


def _candidates(providers: ProviderRegistry, model: str) -> tuple[ResolvedModel, ...]:
    """The model and its fallbacks; a 404 `model_not_found`, as OpenAI's, if there is none."""
    try:
        return providers.chain(model)
    except UnknownModelError as exc:
        raise ApiError(404, "model_not_found", f"The model '{model}' does not exist here: "
                       f"{exc.message}", param="model") from exc


def start_completion(providers: ProviderRegistry, core: Streaming, user: Identity,
                     body: dict[str, Any]) -> StartedCompletion:
    """Check the request completely, then start its run; a 4xx/429/503 before anything
    runs."""
    request = parse_request(body)
    candidates = _candidates(providers, request.model)
    user.check_model(candidates[0].id)
    core.ensure_accepting()
    stream_id = new_id("str")
    give_back = core.take_slots(user.id, user.key_id, user.key_max_streams, stream_id)
    run = core.runs.start(RunSpec(stream_id=stream_id, answer=None, thread_id=None,
                                  candidates=candidates, request=request.chat),
                          on_end=give_back)
    envelope = Envelope("chatcmpl-" + stream_id.partition("_")[2], int(time.time()),
                        request.model, request.include_usage)
    return StartedCompletion(run, envelope, request.stream)


def stream_completion(core: Streaming, started: StartedCompletion) -> Iterator[bytes]:
    """The answer as OpenAI's SSE chunks for the current request's client, ending in
    `[DONE]`; the answer is cancelled if the client goes away first."""
    return _cancelled_when_closed(to_client(_chunks(core, started)), started.run)


def _cancel_unfinished(run: StreamRun) -> None:
    """Nobody waits for this answer any more: stop it, if it is still running (cancelling
    one that is just storing its end changes nothing)."""
    if not run.finished.is_set():
        run.cancel()


def _cancelled_when_closed(frames: Iterator[bytes], run: StreamRun) -> Iterator[bytes]:
    """The server closes this generator when a write to its client fails (or once it
    has sent everything): an answer still running then has nobody to go to."""
    try:
        yield from frames
    finally:
        _cancel_unfinished(run)


def _chunks(core: Streaming, started: StartedCompletion) -> Iterator[bytes]:
    """The first chunk at once (so the client sees the answer begin), then one chunk per
    text, reasoning or tool call event, `: ping` while idle, and the ending."""
    envelope, answer = started.envelope, Answer()
    yield encode_data(envelope.chunk({"role": "assistant", "content": "", "refusal": None}))
    for page in event_pages(core.log, started.run.spec.stream_id, 0, core.ping_seconds):
        if not page:
            yield PING
            continue
        deltas = [answer.apply(event.type, event_data(event.frame)) for event in page]
        frames = b"".join(encode_data(envelope.chunk(delta)) for delta in deltas if delta)
        if frames:  # a page of events OpenAI has no word for (start, usage) sends nothing
            yield frames
    yield b"".join(encode_data(item) for item in envelope.ending(answer)) + DONE


def wait_for_completion(core: Streaming, started: StartedCompletion) -> dict[str, Any]:
    """The whole answer as one `chat.completion` once the run has ended; an error status
    if it failed (a partial answer is not a completion)."""
    answer = Answer()
    try:
        for page in event_pages(core.log, started.run.spec.stream_id, 0, core.ping_seconds):
            for event in page:
                answer.apply(event.type, event_data(event.frame))
    finally:  # the log was lost, or the worker is stopping this request
        _cancel_unfinished(started.run)
    failure = answer.failure
    if failure is not None:
        raise ApiError(_FAILURE_STATUS.get(failure["code"], 502), failure["code"],
                       failure["message"])
    return started.envelope.completion(answer)


def model_list(providers: ProviderRegistry) -> dict[str, Any]:
    """`GET /v1/models`: the models `GET /api/v1/models` lists, in OpenAI's shape."""
    return {"object": "list", "data": [
        {"id": model["id"], "object": "model", "created": _LISTED_SINCE,
         "owned_by": model["provider"]} for model in providers.models()]}
