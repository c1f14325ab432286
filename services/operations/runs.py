"""Running an operation: check the request, store the run, produce it like any answer.

A run is stored (status `streaming`) before the model is called and fills in as the
answer streams, through the same streaming core as chat; its `done` carries the
result. Jobs (services/jobs) store it as `queued` and start it later.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth import Identity
from ..errors import ApiError
from ..web.params import one_of
from ..fields import model_chain, model_field
from ..providers import ChatMessage, ChatRequest, ProviderRegistry, ResolvedModel
from ..storage.models import new_id
from ..storage.work import OperationRun
from ..streaming import RunSpec, StreamRun, Streaming, to_client
from ..streaming.leases import lease_until
from ..streaming.records import AnswerRow
from ..streaming.subscribe import follow
from .definitions import NAME, Operation
from .inputs import check_input, input_schema
from .prompts import TemplateFailed, render
from .results import JsonResult, TextResult

RUN_STATUSES = ("queued", "streaming", "complete", "cancelled", "error", "interrupted")


@dataclass(frozen=True)
class Prepared:
    """A checked operation request, ready to store and run."""

    operation: Operation
    values: dict[str, Any]
    candidates: tuple[ResolvedModel, ...]
    request: ChatRequest


def describe(operation: Operation) -> dict[str, Any]:
    return {"name": operation.name, "description": operation.description,
            "input_schema": input_schema(operation), "output": operation.output,
            "output_schema": operation.output_schema, "model": operation.model}


def _find(operations: dict[str, Operation], name: str) -> Operation:
    operation = operations.get(name)
    if operation is None:
        raise ApiError(404, "operation_not_found", f"There is no operation {name!r}; see "
                       "GET /api/v1/operations.")
    return operation


def _with_timeout(candidate: ResolvedModel, seconds: float | None) -> ResolvedModel:
    """The model with the operation's time limit, if that is the shorter one."""
    timeouts = candidate.settings.timeouts
    if seconds is None or seconds >= timeouts.total:
        return candidate
    settings = replace(candidate.settings, timeouts=replace(timeouts, total=seconds))
    return replace(candidate, settings=settings)


def _render(operation: Operation, values: dict[str, Any]) -> tuple[ChatMessage, ...]:
    try:
        prompt = render(operation.prompt, values)
        system = render(operation.system, values) if operation.system else None
    except TemplateFailed as exc:
        raise ApiError(500, "operation_misconfigured", f"The operation {operation.name!r} "
                       f"could not build its prompt: {exc}") from None
    messages = [ChatMessage("system", system)] if system else []
    return (*messages, ChatMessage("user", prompt))


def prepare(operations: dict[str, Operation], providers: ProviderRegistry, user: Identity,
            name: str, body: dict[str, Any]) -> Prepared:
    """Check an operation request completely (operation, input, model) before anything
    is stored; a 4xx names what is wrong."""
    operation = _find(operations, name)
    values = check_input(operation, body.get("input"))
    chain = model_chain(providers, model_field(body) or operation.model
                        or providers.default_model)
    user.check_model(chain[0].id)
    request = ChatRequest(model="", messages=_render(operation, values),
                          max_tokens=operation.max_output_tokens,
                          json_schema=(operation.output_schema or {"type": "object"}
                                       if operation.output == "json" else None))
    candidates = tuple(_with_timeout(c, operation.timeout_seconds) for c in chain)
    return Prepared(operation, values, candidates, request)


def store_run(session: Session, user: Identity, prepared: Prepared, status: str,
              lease_seconds: float | None = None) -> OperationRun:
    """The run's row: `streaming` (leased) when it starts now, `queued` for a job."""
    run = OperationRun(id=new_id("opr"), user_id=user.id, operation=prepared.operation.name,
                       input=prepared.values, status=status, model=prepared.candidates[0].id,
                       content="", stream_id=new_id("str"),
                       lease_expires_at=lease_until(lease_seconds) if lease_seconds else None)
    session.add(run)
    return run


def produce(core: Streaming, run: OperationRun, prepared: Prepared,
            on_end: Callable[[], None],
            on_finish: Callable[[dict[str, Any]], None] | None = None,
            prelude: tuple[tuple[str, dict[str, Any]], ...] = ()) -> StreamRun:
    """Start the producer of a stored run (its row says `streaming`)."""
    step = JsonResult(prepared.operation.output_schema) if prepared.operation.output == "json" \
        else TextResult()
    spec = RunSpec(stream_id=run.stream_id, answer=AnswerRow.operation_run(run.id),
                   thread_id=None, candidates=prepared.candidates, request=prepared.request,
                   result_step=step, on_finish=on_finish, prelude=prelude)
    return core.runs.start(spec, on_end=on_end)


def start(session: Session, operations: dict[str, Operation], providers: ProviderRegistry,
          core: Streaming, user: Identity, name: str, body: dict[str, Any]) -> StreamRun:
    """Check, store and start an operation run now."""
    prepared = prepare(operations, providers, user, name, body)
    core.ensure_accepting()
    run = store_run(session, user, prepared, "streaming", core.lease_seconds)
    give_back = core.take_slots(user.id, user.key_id, user.key_max_streams, run.stream_id)
    try:
        session.commit()
    except BaseException:
        give_back()
        raise
    return produce(core, run, prepared, give_back)


def stream(session: Session, operations: dict[str, Operation], providers: ProviderRegistry,
           core: Streaming, user: Identity, name: str, body: dict[str, Any]) -> Iterator[bytes]:
    """Start a run and return its SSE frames from the first event on."""
    if body.get("callback_url") is not None:
        raise ApiError(400, "unsupported_field", "A streamed run has no callback: POST to "
                       "/api/v1/operations/<name> with 'callback_url' for a webhook job.",
                       param="callback_url")
    producer = start(session, operations, providers, core, user, name, body)
    return to_client(follow(core.log, producer.spec.stream_id, 0, core.ping_seconds))


def run_and_wait(session: Session, operations: dict[str, Operation],
                 providers: ProviderRegistry, core: Streaming, user: Identity, name: str,
                 body: dict[str, Any]) -> OperationRun:
    """Start a run, wait for its end, and return it as stored."""
    producer = start(session, operations, providers, core, user, name, body)
    run_id = producer.spec.run_id
    producer.finished.wait()
    session.expire_all()
    run = session.get(OperationRun, run_id)
    assert run is not None  # a run is deleted only with its user
    return run


def list_runs(session: Session, user: Identity, operation: str | None, status: str | None,
              limit: int) -> list[OperationRun]:
    """The user's runs, newest first, optionally of one operation and one status."""
    status = one_of(status, RUN_STATUSES, "status")
    if operation is not None and not NAME.fullmatch(operation):
        # Checked, not just compared: a name no operation can have (a NUL byte, say)
        # must not reach the database, where PostgreSQL would refuse the query.
        raise ApiError(400, "invalid_parameter", "'operation' must be an operation's name "
                       "(lowercase letters, digits, '_' and '-').", param="operation")
    query = select(OperationRun).where(OperationRun.user_id == user.id)
    if operation is not None:
        query = query.where(OperationRun.operation == operation)
    if status is not None:
        query = query.where(OperationRun.status == status)
    return list(session.scalars(query.order_by(OperationRun.created_at.desc(),
                                               OperationRun.id).limit(limit)))


def get_run(session: Session, user: Identity, run_id: str) -> OperationRun:
    run = session.get(OperationRun, run_id)
    if run is None or run.user_id != user.id:
        raise ApiError(404, "run_not_found", f"There is no operation run {run_id!r}.")
    return run
