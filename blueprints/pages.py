"""The chat page: one template; everything else happens in static/js against the API."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def chat_page() -> str:
    return render_template("index.html")
