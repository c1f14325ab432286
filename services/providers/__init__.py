"""Model providers, and the registry that resolves `provider/model` names to them."""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import requests
from flask import Flask, current_app

from ..config import DEFAULT_OPENAI_BASE_URL, ConfigError
from .anthropic import AnthropicProvider
from .base import ChatMessage, ChatRequest, Provider, ToolCall, ToolSpec
from .catalog import CatalogError, ModelSettings, global_settings, load_models_file
from .demo import DEMO_TOOLS, DemoProvider
from .embeddings import Embedder, EmbeddingProvider
from .errors import ProviderError, UnknownModelError
from .http import pooled_session
from .ollama import OllamaProvider
from .openai import OpenAIProvider
from .openai_responses import OpenAIResponsesProvider

__all__ = ["ChatMessage", "ChatRequest", "Embedder", "Provider", "ProviderError", "ProviderRegistry",
           "ResolvedModel", "ToolCall", "ToolSpec", "UnknownModelError", "build_registry",
           "init_app", "registry"]

EXTENSION = "sluice.providers"


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to call: its settings and the provider client for them."""

    settings: ModelSettings
    provider: Provider

    @property
    def id(self) -> str:
        return self.settings.id

    def request(self, base: ChatRequest) -> ChatRequest:
        """`base` addressed to this model. A temperature the request sets wins over the
        model's; its token limit is capped by the model's, which is the operator's."""
        settings = self.settings
        temperature = base.temperature if base.temperature is not None else settings.temperature
        limits = [n for n in (base.max_tokens, settings.max_tokens) if n is not None]
        return replace(base, model=settings.name, temperature=temperature,
                       max_tokens=min(limits) if limits else None)


# provider name -> (is it usable with these settings?, how to build its client)
ProviderFactory = tuple[Callable[[ModelSettings, Mapping[str, Any]], str | None],
                        Callable[[ModelSettings, Mapping[str, Any], requests.Session], Provider]]


def _needs_key(key_setting: str, url_setting: str, default_url: str | None) -> Callable[
        [ModelSettings, Mapping[str, Any]], str | None]:
    """Usable with a key, or with a base URL of one's own (local servers need no key)."""
    def problem(settings: ModelSettings, config: Mapping[str, Any]) -> str | None:
        own_url = settings.base_url or (
            config[url_setting] if config[url_setting].rstrip("/") != default_url else None)
        if settings.api_key or config[key_setting] or own_url:
            return None
        return f"set {key_setting}" + (f" (or {url_setting} for a server that needs no key)"
                                        if default_url else "")
    return problem


FACTORIES: dict[str, ProviderFactory] = {
    "demo": (lambda s, c: None,
             lambda s, c, session: DemoProvider(c["SLUICE_DEMO_TOKENS_PER_SECOND"])),
    "openai": (_needs_key("OPENAI_API_KEY", "OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL),
               lambda s, c, session: OpenAIProvider(
                   s.base_url or c["OPENAI_BASE_URL"], s.api_key or c["OPENAI_API_KEY"],
                   session, s.timeouts.connect, s.timeouts.idle, s.max_tokens_field)),
    "openai-responses": (_needs_key("OPENAI_API_KEY", "OPENAI_BASE_URL", DEFAULT_OPENAI_BASE_URL),
                         lambda s, c, session: OpenAIResponsesProvider(
                             s.base_url or c["OPENAI_BASE_URL"], s.api_key or c["OPENAI_API_KEY"],
                             session, s.timeouts.connect, s.timeouts.idle)),
    "anthropic": (_needs_key("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                             "https://api.anthropic.com"),
                  lambda s, c, session: AnthropicProvider(
                      s.base_url or c["ANTHROPIC_BASE_URL"], s.api_key or c["ANTHROPIC_API_KEY"],
                      session, s.timeouts.connect, s.timeouts.idle)),
    "ollama": (lambda s, c: None,
               lambda s, c, session: OllamaProvider(
                   s.base_url or c["OLLAMA_HOST"], session, s.timeouts.connect,
                   s.timeouts.idle, api_key=s.api_key)),
}


# Settings a provider's models have unless the models file says otherwise: the demo
# model is offered the server tools it knows how to call.
PROVIDER_DEFAULTS: dict[str, dict[str, Any]] = {"demo": {"tools": DEMO_TOOLS}}


class ProviderRegistry:
    """Which models this server can serve, and the provider clients that serve them."""

    def __init__(self, config: Mapping[str, Any], models: Mapping[str, ModelSettings],
                 base: ModelSettings) -> None:
        self.config = config
        self.default_model: str = config["LLM_MODEL"]
        self.configured = dict(models)
        self.base = base
        self.session = pooled_session()
        self._clients: dict[tuple[Any, ...], Provider] = {}
        self._lock = threading.Lock()
        # The documents' embedding model (SLUICE_EMBEDDING_MODEL); None: no vector search.
        self.embedder: Embedder | None = None

    def settings(self, model: str) -> ModelSettings:
        """A configured model's settings; any other model has the global ones, with its
        provider's own defaults on top."""
        if model in self.configured:
            return self.configured[model]
        defaults = PROVIDER_DEFAULTS.get(model.partition("/")[0], {})
        return replace(self.base, id=model, **defaults)

    def resolve(self, model: str) -> ResolvedModel:
        """The provider client and settings for `provider/model`; the name is passed on unchanged."""
        name, slash, model_name = model.partition("/")
        if not slash or not name or not model_name:
            raise UnknownModelError(
                f"Model names are written provider/model (e.g. demo/echo), got {model!r}.")
        if name not in FACTORIES:
            raise UnknownModelError(f"There is no provider {name!r}; known: "
                                    + ", ".join(sorted(FACTORIES)) + ".")
        settings = self.settings(model)
        usable, build = FACTORIES[name]
        problem = usable(settings, self.config)
        if problem:
            raise UnknownModelError(f"The {name} provider is not configured here: {problem}.")
        with self._lock:
            client = self._clients.get(settings.connection)
            if client is None:
                client = self._clients[settings.connection] = build(settings, self.config,
                                                                    self.session)
        client.check_model(model_name)
        return ResolvedModel(settings, client)

    def chain(self, model: str) -> tuple[ResolvedModel, ...]:
        """The model, then its fallbacks in order (each once), all resolved."""
        ids = [model] + [m for m in self.settings(model).fallbacks if m != model]
        return tuple(self.resolve(m) for m in dict.fromkeys(ids))

    def models(self) -> list[dict[str, Any]]:
        """The default model, the configured ones, and the demo catalogue."""
        ids = [self.default_model, *self.configured]
        listed = [{"id": m, "provider": m.partition("/")[0],
                   "streaming": self.settings(m).streaming} for m in dict.fromkeys(ids)]
        demo = self.resolve("demo/echo").provider
        listed += [m for m in demo.models() if m["id"] not in ids]
        return listed


def build_registry(config: Mapping[str, Any]) -> ProviderRegistry:
    """The registry for `config`; a model it names but cannot serve stops startup with a
    `ConfigError` that says which setting named it."""
    base = global_settings(config)
    path = config["SLUICE_MODELS_FILE"]
    models: dict[str, ModelSettings] = {}
    if path:
        try:
            with open(path, encoding="utf-8") as file:
                models = load_models_file(file.read(), base)
        except OSError as exc:
            raise ConfigError(f"SLUICE_MODELS_FILE: cannot read {path}: {exc.strerror}") from None
        except (UnicodeDecodeError, CatalogError) as exc:
            raise ConfigError(f"SLUICE_MODELS_FILE ({path}): {exc}") from None
    registry = ProviderRegistry(config, models, base)
    for model, source in _named_models(registry, path).items():
        try:
            registry.resolve(model)
        except UnknownModelError as exc:
            raise ConfigError(f"{source} names {model!r}, which cannot be served: "
                              f"{exc.message}") from None
    if config.get("SLUICE_EMBEDDING_MODEL"):
        registry.embedder = _embedder(registry, config["SLUICE_EMBEDDING_MODEL"])
    return registry


def _embedder(registry: ProviderRegistry, model: str) -> Embedder:
    """The embedding model, resolved like any model (its key, base URL and timeouts), on
    a provider that can embed; anything else stops startup naming the setting."""
    try:
        resolved = registry.resolve(model)
    except UnknownModelError as exc:
        raise ConfigError(f"SLUICE_EMBEDDING_MODEL names {model!r}, which cannot be "
                          f"served: {exc.message}") from None
    if not isinstance(resolved.provider, EmbeddingProvider):
        raise ConfigError(f"SLUICE_EMBEDDING_MODEL names {model!r}, but the "
                          f"{resolved.provider.name} provider has no embeddings here; "
                          "use openai/<model> or ollama/<model>.")
    return Embedder(model, resolved.settings.name, resolved.provider)


def _named_models(registry: ProviderRegistry, path: str | None) -> dict[str, str]:
    """Every model the configuration names -> the setting that names it."""
    named = {registry.default_model: "LLM_MODEL"}
    for model in registry.base.fallbacks:
        named.setdefault(model, "SLUICE_FALLBACK_MODELS")
    for model, settings in registry.configured.items():
        named.setdefault(model, f"SLUICE_MODELS_FILE ({path})")
        for fallback in settings.fallbacks:
            named.setdefault(fallback, f"SLUICE_MODELS_FILE ({path}), fallbacks of {model}")
    return named


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = build_registry(app.config)


def registry(app: Flask | None = None) -> ProviderRegistry:
    return (app or current_app).extensions[EXTENSION]
