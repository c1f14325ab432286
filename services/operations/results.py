"""An operation's result from the model's text: the text itself, or JSON checked against
the operation's schema, with one repair attempt when it is not valid."""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from ..streaming.answer import StepResult

# Models like to wrap JSON in a Markdown code fence; the fence is not part of the answer.
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _problem(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """The parsed value, and what is wrong with it (None: nothing)."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return None, f"it is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
    if schema is not None:
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schema).iter_errors(value))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "the top level"
            return value, f"it does not match the schema at {where}: {error.message}"
    return value, None


@dataclass(frozen=True)
class JsonResult:
    """Parses the answer as JSON; asks the model once to correct an invalid one."""

    schema: dict[str, Any] | None

    def finish(self, text: str, repair: Callable[[str], str | None]) -> StepResult:
        value, problem = _problem(text, self.schema)
        if problem is None:
            return StepResult(result=value)
        prompt = (f"Your answer cannot be used: {problem}. Reply again with only the corrected "
                  "JSON, no explanation and no code fence.")
        if self.schema is not None:
            prompt += " It must match this JSON Schema: " + json.dumps(self.schema)
        repaired = repair(prompt)
        if repaired is None:
            return StepResult(error=_invalid(f"The model's answer was not usable: {problem}; "
                                             "asking it to correct that failed."))
        value, second = _problem(repaired, self.schema)
        if second is None:
            return StepResult(result=value, repaired=repaired)
        return StepResult(repaired=repaired, error=_invalid(
            f"The model's answer was not usable: {problem}. Asked to correct it, "
            f"its second answer was not usable either: {second}."))


@dataclass(frozen=True)
class TextResult:
    """The answer's text is the result."""

    def finish(self, text: str, repair: Callable[[str], str | None]) -> StepResult:
        return StepResult(result=text)


def _invalid(message: str) -> dict[str, Any]:
    return {"code": "invalid_output", "message": message, "retryable": True}
