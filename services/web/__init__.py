"""The HTTP edge: what every request passes before a view sees it (host, origin,
content type, a body read within limits) and what every response carries."""
from __future__ import annotations

from flask import Flask

from .body import read_json_body
from .guards import accepts_upload, install_guards
from .upload import read_uploaded_file
from .params import ascii_int, install_id_converter

__all__ = ["accepts_upload", "ascii_int", "init_app", "read_json_body", "read_uploaded_file"]


def init_app(app: Flask) -> None:
    """Check every request at the edge and give every response the security headers."""
    install_id_converter(app)
    install_guards(app)
