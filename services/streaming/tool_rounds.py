"""The rounds of one answer: between two model calls, the tools Sluice runs itself.

When a round ends with tool calls, the calls of tools Sluice runs (server tools)
run concurrently, each result is sent as a `tool_result` event as it comes, the
round is stored (the answer's calls, and a `tool` message per result), and the next
round sends the model its own turn and the results. A call of a caller's tool ends
the turn instead: the caller answers it later.

The answer's limits hold across rounds: model calls (`max_rounds`), server tool
calls (`max_tool_calls`) and output tokens (`max_tokens`; the wall time is a
deadline of the run). Reaching one ends the answer as `complete` with
`finish_reason` `length`, naming the limit; tools that would pass it do not run.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..providers import ChatMessage, ChatRequest, ResolvedModel, ToolCall
from ..providers.base import new_call_id
from ..storage import Database
from ..tools import ToolContext, ToolResult, run_calls
from .answer import Answer, Outcome
from .spec import RunSpec

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]
Status = Callable[..., None]


@dataclass(frozen=True)
class AfterRound:
    """What comes after a round of tool calls: an end (`outcome`), the caller's turn, or
    (neither) the next round."""

    outcome: Outcome | None = None
    caller_turn: bool = False


def _limit(name: str) -> AfterRound:
    return AfterRound(outcome=Outcome("complete", "length", limit=name))


class ToolRounds:
    """The conversation an answer adds round by round, and the limits on its rounds."""

    def __init__(self, spec: RunSpec, answer: Answer, db: Database,
                 halt: threading.Event) -> None:
        self.spec = spec
        self.answer = answer
        self.db = db
        self.halt = halt  # set when the answer must stop: running tools are told so
        self.turns: list[ChatMessage] = []  # the earlier rounds' calls and results
        self.calls_run = 0
        self._caller_tools = {tool.name for tool in spec.request.tools}

    # --- what each round sends -----------------------------------------------------

    def offered(self, model: ResolvedModel) -> tuple[str, ...]:
        tools = self.spec.tools
        return () if tools is None else tools.offered(model)

    def request(self, base: ChatRequest, model: ResolvedModel) -> ChatRequest:
        """`base` with the earlier rounds, the server tools offered to `model`, and the
        output tokens left to this answer."""
        registry = self.spec.tools.registry if self.spec.tools is not None else None
        server = tuple(registry.get(name).spec() for name in self.offered(model))
        limit = self.spec.limits.tokens
        spent = self.answer.usage.output_tokens or 0
        return replace(base, messages=(*base.messages, *self.turns),
                       tools=(*base.tools, *server),
                       max_tokens=base.max_tokens if limit is None else limit - spent)

    def out_of_tokens(self) -> bool:
        limit = self.spec.limits.tokens
        return limit is not None and (self.answer.usage.output_tokens or 0) >= limit

    def ended(self, finish_reason: str) -> Outcome:
        """A round's end as the provider gave it; a cut at the answer's own token limit
        names the limit."""
        if finish_reason == "length" and self.out_of_tokens():
            return Outcome("complete", "length", limit="max_tokens")
        return Outcome("complete", finish_reason)

    def tool_call(self, call: ToolCall, model: ResolvedModel) -> dict[str, Any]:
        """Record a call of this round. An id the provider left out (or used twice) is
        replaced by one of Sluice's, so each result goes back to its own call. Once the
        model was offered server tools, a call of anything but the caller's own
        functions is Sluice's to answer: a tool it does not have gets an error result,
        and the model goes on."""
        taken = {earlier["id"] for earlier in self.answer.tool_calls}
        call_id = call.id if call.id and call.id not in taken else new_call_id()
        offered = self.offered(model)
        server = call.name in offered or bool(offered) and call.name not in self._caller_tools
        return self.answer.tool_call(call_id, call.name, call.arguments, server=server)

    # --- between rounds ------------------------------------------------------------

    def after_round(self, model: ResolvedModel, status: Status, emit: Emit) -> AfterRound:
        """Run the round's server tools, within the limits, and store the round. Only
        the tools offered to `model` run: a call of another is an error result."""
        calls = self.answer.round_calls()
        server = [call for call in calls if call["server"]]
        if not server:
            return AfterRound(caller_turn=True)
        caller_turn = len(server) < len(calls)
        self.answer.close_round_calls()
        limits = self.spec.limits
        if not caller_turn and self.answer.round >= limits.rounds:
            return _limit("max_rounds")
        if not caller_turn and self.out_of_tokens():
            return _limit("max_tokens")
        if self.calls_run + len(server) > limits.tool_calls:
            return _limit("max_tool_calls")
        names = ", ".join(dict.fromkeys(call["name"] for call in server))
        status("tool_running", f"Running {names}…", tools=[call["name"] for call in server],
               ids=[call["id"] for call in server])
        results = run_calls(self.spec.tools.registry.only(self.offered(model)),
                            [ToolCall(c["id"], c["name"], c["arguments"]) for c in server],
                            self._context(), lambda result: emit("tool_result", result.payload()))
        if self.halt.is_set():  # stopped: the results that ended (and were sent) are kept
            if results:
                self._store(results)
            return AfterRound()
        self.calls_run += len(server)
        self._add_turns(server, results)
        if not self._store(results):
            return AfterRound(outcome=Outcome("error", "error", {
                "code": "storage_error", "retryable": True,
                "message": "The tools' results could not be stored."}))
        return AfterRound(caller_turn=caller_turn)

    def _context(self) -> ToolContext:
        tools = self.spec.tools
        assert tools is not None
        return ToolContext(user_id=tools.user_id, thread_id=tools.thread_id, db=self.db,
                           allow_private=tools.allow_private, cancelled=self.halt)

    def _add_turns(self, server: list[dict[str, Any]], results: list[ToolResult]) -> None:
        self.turns.append(ChatMessage(
            "assistant", self.answer.round_text(),
            tool_calls=tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in server)))
        self.turns += [ChatMessage("tool", result.content(), tool_call_id=result.id,
                                   name=result.name) for result in results]

    def _store(self, results: list[ToolResult]) -> bool:
        tools = self.spec.tools
        assert tools is not None
        try:
            tools.store_round("".join(self.answer.text), self.answer.tool_calls, results)
        except SQLAlchemyError:
            logger.exception("storing the tool results of stream %s failed",
                             self.spec.stream_id)
            return False
        return True
