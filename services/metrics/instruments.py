"""The instruments: what Sluice counts and measures, recorded so that it never raises.

With a multiprocess directory every process writes its values to files of its own
there, and `exposition` sums every process's files; without one it holds them.
"""
from __future__ import annotations

import functools
import glob
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Concatenate, ParamSpec

from flask import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Metric, multiprocess

logger = logging.getLogger(__name__)

# Time to first token: a cached small model answers in tens of milliseconds, a big
# reasoning model may think for a minute (the default first-token timeout).
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0)
# A whole answer: a one-liner to the default total timeout of ten minutes.
ANSWER_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# A request until its response is closed: milliseconds for JSON, minutes for a stream.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                300.0, 600.0)
OTHER_MODEL = "other"
UNMATCHED_ROUTE = "unmatched"
# Any other method is `_OTHER`, as OpenTelemetry's HTTP conventions have it.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
STARTED = "sluice.metrics.started"  # WSGI environ key: when the request came in

P = ParamSpec("P")


def _never_raises(method: Callable[Concatenate[Metrics, P], None]
                  ) -> Callable[Concatenate[Metrics, P], None]:
    """Recording is never worth a failed request or answer: log the first failure of
    each kind (with its traceback), ignore the rest."""
    @functools.wraps(method)
    def safe(self: Metrics, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:
            if method.__name__ not in self.failed:
                self.failed.add(method.__name__)
                logger.exception("recording metrics (%s) failed; later failures of it are "
                                 "not logged", method.__name__)
    return safe


class WorkerFiles:
    """Every process's values in a multiprocess directory, summed: prometheus_client's
    `MultiProcessCollector`, except that it skips files still empty. A process creates
    its file before sizing it; reading one in that moment, or one left by a worker
    killed in it, fails the whole scrape (prometheus/client_python#1199)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        files = [path for path in glob.glob(os.path.join(self.directory, "*.db"))
                 if _size(path) > 0]
        return multiprocess.MultiProcessCollector.merge(files, accumulate=True)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # a dead worker's gauge file, removed since the listing
        return 0


class Metrics:
    """One app's instruments; also the streaming core's `StreamObserver`.

    With `multiprocess_dir` the values go to this process's files there and a scrape
    sums every process's files; without it they stay in this registry.
    """

    def __init__(self, models: frozenset[str], multiprocess_dir: str | None = None) -> None:
        self.models = models  # the configured catalog: other ids are labelled `other`
        self.failed: set[str] = set()
        self.exposition = CollectorRegistry()
        registry: CollectorRegistry | None = self.exposition
        if multiprocess_dir:
            registry = None  # read back from the files, not from these objects
            self.exposition.register(WorkerFiles(multiprocess_dir))
        answer, http = ("provider", "model"), ("route", "method", "status")
        self.http_requests = Counter(
            "sluice_http_requests", "HTTP requests answered, by URL rule, method and status.",
            http, registry=registry)
        self.http_duration = Histogram(
            "sluice_http_request_duration_seconds", "From a request's arrival until its "
            "response is closed (a stream's whole life).", http, buckets=HTTP_BUCKETS,
            registry=registry)
        self.answers = Counter(
            "sluice_answers", "Answers ended, by outcome: complete, cancelled, error or "
            "interrupted.", (*answer, "outcome"), registry=registry)
        self.ttft = Histogram(
            "sluice_time_to_first_token_seconds", "From an answer's start to its first "
            "visible output (gen_ai.server.time_to_first_token).", answer,
            buckets=TTFT_BUCKETS, registry=registry)
        self.answer_duration = Histogram(
            "sluice_answer_duration_seconds", "From an answer's start to its end "
            "(gen_ai.server.request.duration).", (*answer, "outcome"),
            buckets=ANSWER_BUCKETS, registry=registry)
        self.tokens = Counter(
            "sluice_tokens", "Tokens the providers reported, by type: input or output "
            "(gen_ai.client.token.usage).", (*answer, "type"), registry=registry)
        self.active_streams = Gauge(
            "sluice_active_streams", "Answers being produced now.", registry=registry,
            multiprocess_mode="livesum")
        self.resumes = Counter(
            "sluice_resumes", "Requests for a stream's events by id (reconnects).",
            registry=registry)
        self.cancels = Counter(
            "sluice_cancels", "Requests to cancel a stream.", registry=registry)
        self.provider_errors = Counter(
            "sluice_provider_errors", "Failed calls to a model, each attempt of a retry "
            "included, by error code.", (*answer, "code"), registry=registry)
        self.open_sockets = Gauge(
            "sluice_open_sockets", "Socket.IO connections open now.", registry=registry,
            multiprocess_mode="livesum")
        self.socket_requests = Counter(
            "sluice_socket_requests", "Socket.IO requests answered, by event and status (the "
            "HTTP status the same request would get).", ("event", "status"), registry=registry)
        self.rate_limited = Counter(
            "sluice_rate_limited", "Requests refused by a rate limit, by limit.", ("limit",),
            registry=registry)

    def _model(self, model_id: str) -> tuple[str, str]:
        """(provider, model) labels: only catalog models get labels of their own."""
        return model_id.partition("/")[0], model_id if model_id in self.models else OTHER_MODEL

    # --- the streaming core's observer ------------------------------------------------

    @_never_raises
    def stream_opened(self) -> None:
        self.active_streams.inc()

    @_never_raises
    def stream_closed(self) -> None:
        self.active_streams.dec()

    @_never_raises
    def first_output(self, model_id: str, seconds: float) -> None:
        self.ttft.labels(*self._model(model_id)).observe(seconds)

    @_never_raises
    def attempt_failed(self, model_id: str, code: str) -> None:
        self.provider_errors.labels(*self._model(model_id), code).inc()

    @_never_raises
    def answer_ended(self, model_id: str, status: str, seconds: float,
                     input_tokens: int | None, output_tokens: int | None) -> None:
        labels = self._model(model_id)
        self.answers.labels(*labels, status).inc()
        self.answer_duration.labels(*labels, status).observe(seconds)
        for kind, count in (("input", input_tokens), ("output", output_tokens)):
            if count:
                self.tokens.labels(*labels, kind).inc(count)

    @_never_raises
    def resumed(self) -> None:
        self.resumes.inc()

    @_never_raises
    def cancel_requested(self) -> None:
        self.cancels.inc()

    # --- Socket.IO ----------------------------------------------------------------------

    @_never_raises
    def socket_opened(self) -> None:
        self.open_sockets.inc()

    @_never_raises
    def socket_closed(self) -> None:
        self.open_sockets.dec()

    @_never_raises
    def socket_answered(self, event: str, status: int) -> None:
        self.socket_requests.labels(event, str(status)).inc()

    # --- HTTP ---------------------------------------------------------------------------

    @_never_raises
    def request_answered(self, environ: dict[str, object], rule: str | None, method: str,
                         response: Response) -> None:
        """Count the response now; time it when it is closed, which for a stream is when
        its last event has been sent (or its client has gone)."""
        labels = (rule or UNMATCHED_ROUTE, method if method in _METHODS else "_OTHER",
                  str(response.status_code))
        self.http_requests.labels(*labels).inc()
        started = environ.get(STARTED)
        if isinstance(started, float):
            response.call_on_close(lambda: self.request_closed(labels, started))

    @_never_raises
    def request_closed(self, labels: tuple[str, str, str], started: float) -> None:
        self.http_duration.labels(*labels).observe(time.monotonic() - started)

    @_never_raises
    def refused_by_rate_limit(self, limit: str) -> None:
        self.rate_limited.labels(limit).inc()
