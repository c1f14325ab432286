"""Prompt templates, rendered in Jinja's sandbox.

The operator writes templates; callers only fill values. A value is data: whatever
it contains (`{{ … }}`, `{% … %}`) is inserted as text and never rendered, and the
sandbox keeps templates from reaching Python internals (`__class__`, `mro`, …).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Prompts are plain text: no HTML escaping. Undefined names are errors, not "".
_ENVIRONMENT = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined,
                                             keep_trailing_newline=False)


class TemplateFailed(ValueError):
    """A template could not be rendered with these values (an operator's mistake)."""


@lru_cache(maxsize=256)
def compile_template(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)


def render(source: str, values: dict[str, Any]) -> str:
    """The template with `values` filled in as text."""
    try:
        return compile_template(source).render(**values)
    except (SecurityError, UndefinedError) as exc:
        raise TemplateFailed(str(exc)) from None
