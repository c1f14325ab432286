"""Embeddings: text turned into vectors by a provider, for the documents' vector search.

Only some adapters can embed (OpenAI-compatible servers and Ollama); they say so by
having an `embed_batch` method (`EmbeddingProvider`). `Embedder` is the configured
embedding model (SLUICE_EMBEDDING_MODEL) bound to its adapter: it cuts the texts
into batches and checks every answer, so a wrong count or a malformed vector is an
`UpstreamStreamError` here, not a silent mismatch of chunks and vectors later.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .errors import UpstreamStreamError

EMBED_BATCH = 64  # texts per request: within every provider's limit on inputs per call


@runtime_checkable
class EmbeddingProvider(Protocol):
    """An adapter that can embed: one request for a batch of texts, vectors in order."""

    name: str

    def embed_batch(self, model: str, texts: list[str]) -> list[Any]:
        """The vectors for `texts` as the provider sent them, in the texts' order."""
        ...


@dataclass(frozen=True)
class Embedder:
    """The embedding model `id` (`provider/name`), ready to call."""

    id: str
    name: str  # the model's name at its provider
    provider: EmbeddingProvider

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raises a `ProviderError` if any batch fails."""
        vectors: list[list[float]] = []
        for first in range(0, len(texts), EMBED_BATCH):
            batch = list(texts[first:first + EMBED_BATCH])
            answered = self.provider.embed_batch(self.name, batch)
            if len(answered) != len(batch):
                raise UpstreamStreamError(f"{self.provider.name} answered {len(answered)} "
                                          f"embeddings for {len(batch)} texts")
            vectors += [_vector(raw, self.provider.name) for raw in answered]
        return vectors


def _vector(raw: Any, provider: str) -> list[float]:
    """One embedding as a list of finite floats; anything else breaks the format."""
    if not isinstance(raw, list) or not raw:
        raise UpstreamStreamError(f"{provider} answered an embedding that is not a vector")
    try:
        vector = [float(x) for x in raw]
    except (TypeError, ValueError):
        raise UpstreamStreamError(f"{provider} answered an embedding that is not numbers") \
            from None
    if not all(math.isfinite(x) for x in vector):
        raise UpstreamStreamError(f"{provider} answered an embedding with NaN or infinity")
    return vector
