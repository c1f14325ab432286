"""Graceful shutdown: on SIGTERM a worker finishes or stores what it is answering."""
from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from flask import Flask

from .core import Streaming, streaming


def install_graceful_shutdown(app: Flask, graceful_seconds: float,
                              spawn: Callable[..., object]) -> None:
    """On SIGTERM: take no new answers, let running ones finish within the graceful
    time, then store the rest as interrupted — before gunicorn's own deadline — and
    close what waits only for them (`core.on_drained`: open sockets, which would
    otherwise hold the worker until that deadline).

    `spawn` starts the drain without blocking (a signal handler must not block):
    `gevent.spawn` under gunicorn's gevent worker."""
    core = streaming(app)
    previous: Any = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum: int, frame: Any) -> None:
        if not core.draining.is_set():
            core.draining.set()
            window = max(0.0, graceful_seconds - 3)  # leave time to store and say done
            spawn(_drain, core, window)
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _drain(core: Streaming, window: float) -> None:
    core.runs.drain(window)
    for close in core.on_drained:
        close()
