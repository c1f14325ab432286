"""Settings: their defaults and how they are read from the environment.

Only the app factory calls `settings_from_env`; everything else receives the
values it needs as arguments or through `app.config`.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Callable

from .webhooks.schedule import DEFAULT_RETRY_SECONDS, parse_schedule

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
# Names a local Sluice answers to; anything else could be DNS rebinding.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


class ConfigError(ValueError):
    """A setting Sluice cannot start with; the message names the variable or file."""


def default_settings(instance_path: str) -> dict[str, Any]:
    """The settings Sluice runs with when the environment says nothing."""
    return {
        "DATABASE_URL": "sqlite:///" + os.path.join(instance_path, "sluice.db"),
        "REDIS_URL": None,
        "LLM_MODEL": "demo/echo",
        "OPENAI_API_KEY": None,
        "OPENAI_BASE_URL": DEFAULT_OPENAI_BASE_URL,
        "ANTHROPIC_API_KEY": None,
        "ANTHROPIC_BASE_URL": DEFAULT_ANTHROPIC_BASE_URL,
        "OLLAMA_HOST": DEFAULT_OLLAMA_HOST,
        "SLUICE_AUTH": "off",
        # Signs session cookies; None: one is made once into the instance folder.
        "SLUICE_SECRET_KEY": None,
        # "on" once the site is served over HTTPS: the browser then sends the session
        # cookie over HTTPS only.
        "SLUICE_COOKIE_SECURE": "off",
        # Requests a minute and answers streaming at once, per user and per API key
        # (a key's own limits win over SLUICE_KEY_*); 0: no limit.
        "SLUICE_USER_RPM": 0,
        "SLUICE_KEY_RPM": 0,
        "SLUICE_USER_MAX_STREAMS": 0,
        "SLUICE_KEY_MAX_STREAMS": 0,
        # Pace of the offline demo model; fast enough to read, slow enough to see.
        "SLUICE_DEMO_TOKENS_PER_SECOND": 30.0,
        # Idle subscribers get ": ping" this often (keeps proxies open, finds gone clients).
        "SLUICE_PING_SECONDS": 15.0,
        # A streaming answer's text is written to the database at least this often.
        "SLUICE_CHECKPOINT_SECONDS": 1.0,
        # How long a finished stream's events stay replayable from the event log;
        # later resumes are answered from the stored message.
        "SLUICE_EVENT_TTL_SECONDS": 900.0,
        # Finished streams' events kept in a process's memory, at most (oldest dropped
        # first; a resume of a dropped one is answered from storage).
        "SLUICE_EVENT_LOG_MAX_BYTES": 8 * 1024 * 1024,
        # Redis connections a process's commands share (its stream tail and cancel
        # bus hold one more each), however many streams it serves.
        "SLUICE_REDIS_CONNECTIONS": 4,
        # A producer renews its streams' leases; this long after its last renewal a
        # stream counts as orphaned (its worker died) and is ended as interrupted.
        "SLUICE_LEASE_SECONDS": 10.0,
        # A client that takes no data for this long is dropped (the answer goes on).
        "SLUICE_SEND_TIMEOUT": 30.0,
        "SLUICE_CONNECT_TIMEOUT": 10.0,
        # From sending a request to the provider to its first visible output.
        "SLUICE_FIRST_TOKEN_TIMEOUT": 60.0,
        # Longest silence tolerated between two chunks of a provider's answer.
        "SLUICE_READ_TIMEOUT": 120.0,
        "SLUICE_TOTAL_TIMEOUT": 600.0,
        # Attempts per model before its first output (connection errors, 429, 5xx).
        "SLUICE_RETRY_ATTEMPTS": 3,
        "SLUICE_RETRY_BASE_SECONDS": 0.5,
        "SLUICE_RETRY_MAX_SECONDS": 8.0,
        # Models tried in order when the chosen one fails before its first output.
        "SLUICE_FALLBACK_MODELS": [],
        # TOML file with per-model settings; see services/providers/catalog.py.
        "SLUICE_MODELS_FILE": None,
        # TOML file of AI operations added to the built-ins (services/operations).
        "SLUICE_OPERATIONS_FILE": None,
        # Modules (import paths) whose server tools are added to the built-ins and the
        # `sluice.tools` entry points' (services/tools).
        "SLUICE_TOOL_MODULES": (),
        # Queue workers (threads; greenlets under gevent) each serving process runs
        # for jobs; 0: this process takes no jobs (run `flask --app wsgi worker`).
        "SLUICE_JOB_WORKERS": 4,
        # Jobs one process runs at once; more wait in the queue.
        "SLUICE_JOB_CONCURRENCY": 16,
        # Runs of one job before it fails, when the workers running it keep dying.
        "SLUICE_JOB_ATTEMPTS": 3,
        # The queue's name (its Redis keys, or its SQLite file in the instance folder);
        # deployments that share a Redis need different names.
        "SLUICE_JOB_QUEUE": "sluice-jobs",
        # A thread's history is summarized once it takes more than this share of the
        # model's budget (its window less the answer's reserve).
        "SLUICE_SUMMARY_SHARE": 0.75,
        # The (cheaper) model that writes summaries; empty: the thread's own model.
        "SLUICE_SUMMARY_MODEL": "",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        # An uploaded document's largest size (`POST /api/v1/documents` only: every other
        # request stays within SLUICE_MAX_REQUEST_BYTES).
        "SLUICE_DOCUMENT_MAX_BYTES": 10 * 1024 * 1024,
        # Documents larger than this are read and indexed by a background job (`202`);
        # smaller ones at once, in the upload's request (`201`).
        "SLUICE_DOCUMENT_INLINE_BYTES": 256 * 1024,
        # `Host` values served besides the loopback names, which always are
        # ("*": any; ".example.com": it and its subdomains).
        "SLUICE_ALLOWED_HOSTS": (),
        # Origins besides this server's own that may make state-changing requests.
        "SLUICE_ALLOWED_ORIGINS": (),
        # Required as a bearer token to read /metrics; unset: loopback clients only.
        "SLUICE_METRICS_TOKEN": None,
        # Where gunicorn's workers keep their metrics so that /metrics sums them all;
        # gunicorn.conf.py sets it before the workers start. Unset: this process only.
        "PROMETHEUS_MULTIPROC_DIR": None,
        # "on": callback URLs (and fetch_url) may reach private, loopback and link-local
        # hosts, for tests and closed networks; cloud metadata services never.
        "SLUICE_WEBHOOK_ALLOW_PRIVATE": "off",
        # Seconds before each retry of a webhook delivery; after the last, it has failed.
        "SLUICE_WEBHOOK_RETRY_SECONDS": DEFAULT_RETRY_SECONDS,
        # "on": after an answer, a model picks durable facts about the user out of the
        # exchange and stores them as memories (services/memory); each user sees and can
        # delete every one. Off by default: it is a second model call per answer.
        "SLUICE_MEMORY_EXTRACTION": "off",
        # `provider/model` that embeds document chunks and questions for vector search
        # beside full-text search (openai/… or ollama/…); empty: full-text search only.
        "SLUICE_EMBEDDING_MODEL": "",
    }


def _number(name: str, cast: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {raw!r}")
        return value

    return parse


def _share(raw: str) -> float:
    """A share of something, above 0 and at most 1."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"must be a number between 0 and 1, got {raw!r}") from None
    if not 0 < value <= 1:
        raise ValueError(f"must be above 0 and at most 1, got {raw!r}")
    return value


def _count(name: str) -> Callable[[str], int]:
    """A whole number, 0 or more (0 meaning "no limit")."""
    def parse(raw: str) -> int:
        if not (raw.isascii() and raw.isdigit()):
            raise ValueError(f"{name} must be a whole number (0: no limit), got {raw!r}")
        return int(raw)

    return parse


def _on_off(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ValueError(f"must be 'on' or 'off', got {raw!r}")
    return value


def _model_list(raw: str) -> list[str]:
    return [model.strip() for model in raw.split(",") if model.strip()]


def _name_list(raw: str) -> tuple[str, ...]:
    return tuple(name.strip().lower() for name in raw.split(",") if name.strip())


def _origin_list(raw: str) -> tuple[str, ...]:
    origins = tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())
    for origin in origins:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or "/" in rest:
            raise ValueError(f"each origin must look like https://example.com, got {origin!r}")
    return origins


def _module_list(raw: str) -> tuple[str, ...]:
    modules = tuple(module.strip() for module in raw.split(",") if module.strip())
    for module in modules:
        if not all(part.isidentifier() for part in module.split(".")):
            raise ValueError(f"each entry must be a module's import path like "
                             f"my_tools.weather, got {module!r}")
    return modules


def _queue_name(raw: str) -> str:
    if not all(char.isascii() and (char.isalnum() or char in "-_") for char in raw):
        raise ValueError("SLUICE_JOB_QUEUE may hold letters, digits, - and _ only")
    return raw


def _token(raw: str) -> str:
    if not all("!" <= char <= "~" for char in raw):
        raise ValueError("SLUICE_METRICS_TOKEN must be printable ASCII without spaces, "
                         "as it is sent in an Authorization header")
    return raw


# Environment variable -> (config key, parser). Unset or empty variables keep the default.
_ENVIRONMENT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "DATABASE_URL": ("DATABASE_URL", str),
    "REDIS_URL": ("REDIS_URL", str),
    "LLM_MODEL": ("LLM_MODEL", str),
    "OPENAI_API_KEY": ("OPENAI_API_KEY", str),
    "OPENAI_BASE_URL": ("OPENAI_BASE_URL", str),
    "ANTHROPIC_API_KEY": ("ANTHROPIC_API_KEY", str),
    "ANTHROPIC_BASE_URL": ("ANTHROPIC_BASE_URL", str),
    "OLLAMA_HOST": ("OLLAMA_HOST", str),
    "SLUICE_AUTH": ("SLUICE_AUTH", _on_off),
    "SLUICE_SECRET_KEY": ("SLUICE_SECRET_KEY", str),
    "SLUICE_COOKIE_SECURE": ("SLUICE_COOKIE_SECURE", _on_off),
    **{name: (name, _count(name)) for name in (
        "SLUICE_USER_RPM", "SLUICE_KEY_RPM", "SLUICE_USER_MAX_STREAMS", "SLUICE_KEY_MAX_STREAMS")},
    "SLUICE_DEMO_TOKENS_PER_SECOND": (
        "SLUICE_DEMO_TOKENS_PER_SECOND", _number("SLUICE_DEMO_TOKENS_PER_SECOND", float)),
    "SLUICE_PING_SECONDS": ("SLUICE_PING_SECONDS", _number("SLUICE_PING_SECONDS", float)),
    "SLUICE_CHECKPOINT_SECONDS": (
        "SLUICE_CHECKPOINT_SECONDS", _number("SLUICE_CHECKPOINT_SECONDS", float)),
    "SLUICE_EVENT_TTL_SECONDS": (
        "SLUICE_EVENT_TTL_SECONDS", _number("SLUICE_EVENT_TTL_SECONDS", float)),
    "SLUICE_EVENT_LOG_MAX_BYTES": (
        "SLUICE_EVENT_LOG_MAX_BYTES", _number("SLUICE_EVENT_LOG_MAX_BYTES", int)),
    "SLUICE_REDIS_CONNECTIONS": (
        "SLUICE_REDIS_CONNECTIONS", _number("SLUICE_REDIS_CONNECTIONS", int)),
    "SLUICE_LEASE_SECONDS": ("SLUICE_LEASE_SECONDS", _number("SLUICE_LEASE_SECONDS", float)),
    "SLUICE_SEND_TIMEOUT": ("SLUICE_SEND_TIMEOUT", _number("SLUICE_SEND_TIMEOUT", float)),
    "SLUICE_CONNECT_TIMEOUT": ("SLUICE_CONNECT_TIMEOUT", _number("SLUICE_CONNECT_TIMEOUT", float)),
    "SLUICE_READ_TIMEOUT": ("SLUICE_READ_TIMEOUT", _number("SLUICE_READ_TIMEOUT", float)),
    "SLUICE_FIRST_TOKEN_TIMEOUT": (
        "SLUICE_FIRST_TOKEN_TIMEOUT", _number("SLUICE_FIRST_TOKEN_TIMEOUT", float)),
    "SLUICE_TOTAL_TIMEOUT": ("SLUICE_TOTAL_TIMEOUT", _number("SLUICE_TOTAL_TIMEOUT", float)),
    "SLUICE_RETRY_ATTEMPTS": ("SLUICE_RETRY_ATTEMPTS", _number("SLUICE_RETRY_ATTEMPTS", int)),
    "SLUICE_RETRY_BASE_SECONDS": (
        "SLUICE_RETRY_BASE_SECONDS", _number("SLUICE_RETRY_BASE_SECONDS", float)),
    "SLUICE_RETRY_MAX_SECONDS": (
        "SLUICE_RETRY_MAX_SECONDS", _number("SLUICE_RETRY_MAX_SECONDS", float)),
    "SLUICE_FALLBACK_MODELS": ("SLUICE_FALLBACK_MODELS", _model_list),
    "SLUICE_MODELS_FILE": ("SLUICE_MODELS_FILE", str),
    "SLUICE_OPERATIONS_FILE": ("SLUICE_OPERATIONS_FILE", str),
    "SLUICE_TOOL_MODULES": ("SLUICE_TOOL_MODULES", _module_list),
    "SLUICE_JOB_WORKERS": ("SLUICE_JOB_WORKERS", _count("SLUICE_JOB_WORKERS")),
    "SLUICE_JOB_CONCURRENCY": (
        "SLUICE_JOB_CONCURRENCY", _number("SLUICE_JOB_CONCURRENCY", int)),
    "SLUICE_JOB_ATTEMPTS": ("SLUICE_JOB_ATTEMPTS", _number("SLUICE_JOB_ATTEMPTS", int)),
    "SLUICE_JOB_QUEUE": ("SLUICE_JOB_QUEUE", _queue_name),
    "SLUICE_SUMMARY_SHARE": ("SLUICE_SUMMARY_SHARE", _share),
    "SLUICE_SUMMARY_MODEL": ("SLUICE_SUMMARY_MODEL", str),
    "SLUICE_MAX_REQUEST_BYTES": ("MAX_CONTENT_LENGTH", _number("SLUICE_MAX_REQUEST_BYTES", int)),
    "SLUICE_DOCUMENT_MAX_BYTES": (
        "SLUICE_DOCUMENT_MAX_BYTES", _number("SLUICE_DOCUMENT_MAX_BYTES", int)),
    "SLUICE_DOCUMENT_INLINE_BYTES": (
        "SLUICE_DOCUMENT_INLINE_BYTES", _number("SLUICE_DOCUMENT_INLINE_BYTES", int)),
    "SLUICE_ALLOWED_HOSTS": ("SLUICE_ALLOWED_HOSTS", _name_list),
    "SLUICE_ALLOWED_ORIGINS": ("SLUICE_ALLOWED_ORIGINS", _origin_list),
    "SLUICE_METRICS_TOKEN": ("SLUICE_METRICS_TOKEN", _token),
    # prometheus_client reads this variable itself too; both must agree (services/metrics).
    "PROMETHEUS_MULTIPROC_DIR": ("PROMETHEUS_MULTIPROC_DIR", str),
    "SLUICE_WEBHOOK_ALLOW_PRIVATE": ("SLUICE_WEBHOOK_ALLOW_PRIVATE", _on_off),
    "SLUICE_WEBHOOK_RETRY_SECONDS": ("SLUICE_WEBHOOK_RETRY_SECONDS", parse_schedule),
    "SLUICE_MEMORY_EXTRACTION": ("SLUICE_MEMORY_EXTRACTION", _on_off),
    "SLUICE_EMBEDDING_MODEL": ("SLUICE_EMBEDDING_MODEL", str),
}


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets, parsed; a malformed value stops startup with a
    `ConfigError` that names the variable."""
    settings: dict[str, Any] = {}
    for variable, (key, parse) in _ENVIRONMENT.items():
        raw = environ.get(variable, "").strip()
        if raw:
            try:
                settings[key] = parse(raw)
            except ValueError as exc:
                message = str(exc)
                raise ConfigError(message if message.startswith(variable)
                                  else f"{variable}: {message}") from None
    return settings
