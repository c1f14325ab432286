"""The WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`.

A setting Sluice cannot start with is reported as one line that names it, not a
traceback. The exit status 3 tells gunicorn's master that a worker cannot boot, so
it stops instead of starting the worker again and again.
"""
import sys

from app import create_app
from services.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    print(f"sluice: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(3) from None
