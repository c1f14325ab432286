"""The OpenAI-compatible API (`/v1`): Chat Completions and the model list, so the official
SDKs and the tools built on them work unchanged against Sluice.

A completion is an ordinary run of the streaming core, with nothing stored: the
request becomes a provider-neutral `ChatRequest` (request.py, messages.py), the
run's events become OpenAI chunks or one `chat.completion` (answer.py), and
completions.py ties them to the run and its log.
"""
from __future__ import annotations

from .completions import (StartedCompletion, model_list, start_completion, stream_completion,
                          wait_for_completion)
from .errors import error_object

__all__ = ["StartedCompletion", "error_object", "model_list", "start_completion",
           "stream_completion", "wait_for_completion"]
