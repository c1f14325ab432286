"""The chat page: one template; everything else happens in static/js against the API."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from services.auth import csrf_token, current_user, page

bp = Blueprint("pages", __name__)


@bp.get("/")
@page
def chat_page() -> str:
    return render_template("index.html", user=current_user(), csrf_token=csrf_token() or "",
                           auth_on=current_app.config["SLUICE_AUTH"] == "on")
