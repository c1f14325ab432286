"""Model providers, and the registry that resolves `provider/model` names to them."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app

from ..config import DEFAULT_OPENAI_BASE_URL
from .base import ChatMessage, ChatRequest, Provider
from .demo import DemoProvider
from .errors import ProviderError, UnknownModelError
from .http import pooled_session
from .openai import OpenAIProvider

__all__ = ["ChatMessage", "ChatRequest", "Provider", "ProviderError", "ProviderRegistry",
           "UnknownModelError", "build_registry", "init_app", "registry"]

EXTENSION = "sluice.providers"

# Providers Sluice knows but that need settings before they can serve.
_SETUP_HINTS = {
    "openai": "set OPENAI_API_KEY (or OPENAI_BASE_URL for a server that needs no key)",
    "openai-responses": "it arrives in a later release",
    "anthropic": "it arrives in a later release",
    "ollama": "it arrives in a later release",
}


class ProviderRegistry:
    """The providers this server is configured for, by name."""

    def __init__(self, providers: Mapping[str, Provider], default_model: str) -> None:
        self.providers = dict(providers)
        self.default_model = default_model

    def resolve(self, model: str) -> tuple[Provider, str]:
        """The provider for `provider/model` and the model name it is given, unchanged."""
        name, slash, model_name = model.partition("/")
        if not slash or not name or not model_name:
            raise UnknownModelError(
                f"Model names are written provider/model (e.g. demo/echo), got {model!r}.")
        provider = self.providers.get(name)
        if provider is None:
            if name in _SETUP_HINTS:
                raise UnknownModelError(
                    f"The {name} provider is not configured here: {_SETUP_HINTS[name]}.")
            raise UnknownModelError(f"There is no provider {name!r}; known: "
                                    + ", ".join(sorted(self.providers)) + ".")
        provider.check_model(model_name)
        return provider, model_name

    def models(self) -> list[dict[str, Any]]:
        """The configured models: each provider's catalogue plus the default model."""
        listed = [model for provider in self.providers.values() for model in provider.models()]
        if all(model["id"] != self.default_model for model in listed):
            provider, _ = self.resolve(self.default_model)
            listed.insert(0, {"id": self.default_model, "provider": provider.name,
                              "streaming": True})
        return listed


def build_registry(config: Mapping[str, Any]) -> ProviderRegistry:
    """The providers `config` enables; `demo` is always there."""
    providers: dict[str, Provider] = {
        "demo": DemoProvider(tokens_per_second=config["SLUICE_DEMO_TOKENS_PER_SECOND"]),
    }
    custom_openai_url = config["OPENAI_BASE_URL"].rstrip("/") != DEFAULT_OPENAI_BASE_URL
    if config["OPENAI_API_KEY"] or custom_openai_url:
        providers["openai"] = OpenAIProvider(
            base_url=config["OPENAI_BASE_URL"], api_key=config["OPENAI_API_KEY"],
            session=pooled_session(), connect_timeout=config["SLUICE_CONNECT_TIMEOUT"],
            read_timeout=config["SLUICE_READ_TIMEOUT"])
    return ProviderRegistry(providers, config["LLM_MODEL"])


def init_app(app: Flask) -> None:
    registry = build_registry(app.config)
    registry.resolve(registry.default_model)  # a bad LLM_MODEL stops startup, not a request
    app.extensions[EXTENSION] = registry


def registry(app: Flask | None = None) -> ProviderRegistry:
    return (app or current_app).extensions[EXTENSION]
