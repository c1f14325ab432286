"""gunicorn settings for Sluice: gevent workers, so one worker holds many open streams.

These are the server's own settings, read from the environment here as gunicorn
reads its config file; the application's settings are read by `create_app` only.
"""
import os

from services.server.metrics_dir import (forget_worker, prepare_metrics_dir,
                                         remove_own_metrics_dir)
from services.server.startup import browser_url, check_binds

_port = os.environ.get("PORT", "8000").strip()
if not (_port.isascii() and _port.isdigit() and 0 < int(_port) < 65536):
    raise SystemExit(f"sluice: PORT must be a port number (1-65535), got {_port!r}")

bind = f"{os.environ.get('SLUICE_HOST', '127.0.0.1')}:{_port}"
# gevent, and answers to requests gunicorn cannot parse (too long, bad framing) as JSON.
worker_class = "services.server.worker.SluiceGeventWorker"
# One worker by default: without REDIS_URL a stream's events live in the memory of
# the worker that produces them, so every request for it must reach that worker.
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
worker_connections = int(os.environ.get("SLUICE_WORKER_CONNECTIONS", "1000"))
# The gevent worker heartbeats from its own greenlet, so long streams never trip this.
timeout = 30
# On SIGTERM, running streams get this long to finish before the worker is stopped.
graceful_timeout = int(os.environ.get("SLUICE_GRACEFUL_TIMEOUT", "30"))
keepalive = 75  # longer than nginx's upstream keepalive_timeout default (60 s)
accesslog = "-"
errorlog = "-"
# gunicorn's runtime control socket is not used by Sluice; off, so several
# instances on one host never compete for its path.
control_socket_disable = True


def on_starting(server):
    """A busy port is one line saying what to do, not five retries and a traceback.
    (Not when the sockets are handed over: a re-executing master, systemd sockets.)"""
    if not (os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS")):
        check_binds(server.cfg.bind)
    # Here, not at the top of this file: a reload (HUP) reads this file again but
    # keeps the master and its directory. Set before any worker starts, as each
    # worker's prometheus_client reads it when imported (services/server/metrics_dir.py).
    path = prepare_metrics_dir(os.environ)
    server.log.info("Workers' Prometheus metrics are kept in %s", path)


def when_ready(server):
    server.log.info("Sluice is ready: open %s", browser_url(server.cfg.bind[0]))


def child_exit(server, worker):
    """A dead worker's streams are not active any more: drop its share of the gauge.
    (An exception here would stop the master, so a failure is only logged.)"""
    try:
        forget_worker(worker.pid, os.environ)
    except Exception:  # noqa: BLE001 - the master must outlive a metrics failure
        server.log.exception("could not drop the metrics of worker %s", worker.pid)


def on_exit(server):
    remove_own_metrics_dir(os.environ)


def post_worker_init(worker):
    """On SIGTERM, running answers get the graceful timeout to finish; the rest are
    stored as interrupted before the worker exits (see services/streaming), and their
    jobs go back to the queue. Each worker also takes jobs (SLUICE_JOB_WORKERS)."""
    import gevent

    from services.jobs import start_worker
    from services.streaming import install_graceful_shutdown

    install_graceful_shutdown(worker.wsgi, worker.cfg.graceful_timeout, spawn=gevent.spawn)
    start_worker(worker.wsgi)
