"""Context that fits: token counts, a budget per model, and summaries of long threads."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .budget import (Budget, ContextTooLong, Fitted, budget_for, exchanges, fit,
                     split_last_exchange)
from .summaries import (Summary, after_summary, history_with_summary, latest_summary,
                        needs_summary, store_summary, summarize, summary_prompt, summary_span)
from .tokens import (Calibration, EncodingUnavailable, count_messages, count_text,
                     count_tools, encoding)

EXTENSION = "sluice.context"


@dataclass(frozen=True)
class ContextSettings:
    """This process's context state: the calibration it learns and the summary settings."""

    calibration: Calibration
    summary_share: float
    summary_model: str | None  # None: the thread's own model


def init_app(app: Flask) -> None:
    """Load the bundled encoding now, so a broken install stops startup rather than the
    first answer, and keep the calibration and summary settings on the app."""
    encoding()
    app.extensions[EXTENSION] = ContextSettings(
        calibration=Calibration(), summary_share=app.config["SLUICE_SUMMARY_SHARE"],
        summary_model=app.config["SLUICE_SUMMARY_MODEL"] or None)


def context(app: Flask | None = None) -> ContextSettings:
    return (app or current_app).extensions[EXTENSION]


__all__ = ["Budget", "Calibration", "ContextSettings", "ContextTooLong", "EncodingUnavailable",
           "Fitted", "Summary", "after_summary", "budget_for", "context", "count_messages",
           "count_text", "count_tools", "exchanges", "fit", "history_with_summary", "init_app",
           "latest_summary", "needs_summary", "split_last_exchange", "store_summary",
           "summarize", "summary_prompt", "summary_span"]
