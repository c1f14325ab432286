"""Prometheus metrics: the extension that records them and answers `GET /metrics`.

Under gunicorn (`gunicorn.conf.py` sets `PROMETHEUS_MULTIPROC_DIR` before the
workers start) each worker writes its values to files of its own in that
directory, and a scrape, served by any worker, sums them all. Without it
(`flask run`, the test client) a scrape reads this process's registry.

Meanings follow OpenTelemetry's GenAI conventions where one exists: `provider`
is `gen_ai.provider.name` (formerly `gen_ai.system`) and `model` the Sluice id of
`gen_ai.request.model`. Labels stay bounded: models outside the configured
catalog are `other`, routes are URL rules, never paths or ids.

Recording never breaks a request or an answer: a failure is logged once per kind
and otherwise ignored (instruments.py).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, values

from ..config import ConfigError
from ..providers import ProviderRegistry, registry
from .access import check_access
from .instruments import STARTED, Metrics

__all__ = ["Metrics", "count_rate_limited", "init_app", "recorder", "scrape"]

EXTENSION = "sluice.metrics"


def init_app(app: Flask) -> None:
    """Attach the instruments (after `providers`, whose catalog names the models) and
    count and time every request, those the guards refuse included."""
    directory = app.config["PROMETHEUS_MULTIPROC_DIR"]
    if directory:
        # prometheus_client chose where values live when it was imported, from the
        # environment; a directory set only in the config would read back nothing.
        if not getattr(values.ValueClass, "_multiprocess", False):
            raise ConfigError("PROMETHEUS_MULTIPROC_DIR must be in the environment before "
                              "Sluice starts: prometheus_client reads it when imported")
        os.makedirs(directory, exist_ok=True)
    app.extensions[EXTENSION] = Metrics(model_catalog(registry(app)), directory)
    inner = app.wsgi_app

    def timed(environ: dict[str, object], start_response: Callable[..., object]) -> object:
        environ[STARTED] = time.monotonic()  # before any hook, so refusals are timed too
        return inner(environ, start_response)

    app.wsgi_app = timed  # type: ignore[method-assign]
    app.after_request(_count_response)


def model_catalog(providers: ProviderRegistry) -> frozenset[str]:
    """Every model id the configuration names: the ones `/api/v1/models` lists, and
    fallbacks. A caller may name any other (`openai/<anything>`): those share a label."""
    ids = {model["id"] for model in providers.models()}
    ids.update(providers.base.fallbacks)
    for settings in providers.configured.values():
        ids.update(settings.fallbacks)
    return frozenset(ids)


def _count_response(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else None
    recorder().request_answered(request.environ, rule, request.method, response)
    return response


def recorder(app: Flask | None = None) -> Metrics:
    """The app's instruments; also the streaming core's observer."""
    return (app or current_app).extensions[EXTENSION]


def count_rate_limited(limit: str) -> None:
    """Count a request refused by the rate limit named `limit` (a fixed name per limit,
    such as "messages_per_minute"; never a user or key id). Within a request."""
    recorder().refused_by_rate_limit(limit)


def scrape(remote_addr: str | None, headers: Mapping[str, str]) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type, for a client that
    may read them; else a 401 (`SLUICE_METRICS_TOKEN` set) or 403 `ApiError`."""
    check_access(remote_addr, headers, current_app.config["SLUICE_METRICS_TOKEN"])
    return generate_latest(recorder().exposition), CONTENT_TYPE_LATEST
