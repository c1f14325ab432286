"""What `make run` says around starting gunicorn: a busy port in one line that says
what to do, and the address to open once the server is ready."""
from __future__ import annotations

import errno
import socket


def split_bind(bind: str) -> tuple[str, int]:
    """('host', port) from gunicorn's `HOST:PORT` (IPv6 as `[::1]:PORT`)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def port_in_use(host: str, port: int) -> bool:
    """Whether binding `host:port` fails because something already listens there.

    Bound the way gunicorn binds (with SO_REUSEADDR), so a port that only has
    connections in TIME_WAIT from an earlier run counts as free, as it is for it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def check_binds(binds: list[str]) -> None:
    """Stop with one line naming the port if any address to bind is taken."""
    for bind in binds:
        if bind.startswith(("unix:", "fd://")):
            continue
        host, port = split_bind(bind)
        if port_in_use(host, port):
            raise SystemExit(f"sluice: port {port} is in use — set PORT to another port, "
                             f"e.g. PORT={port + 1} make run")


def browser_url(bind: str) -> str:
    """The address a person on this machine opens for `bind`."""
    host, port = split_bind(bind)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
