"""Private Redis, PostgreSQL and nginx instances for the tests, on free loopback ports.

They use the Debian packages that `scripts/install-test-services` installs. A
service that cannot start fails the tests that need it, loudly.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

from .live_server import ROOT, free_port


def _wait_until(ready: Callable[[], bool], what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start; its log:\n{log.read_text(errors='replace')}")


class RedisServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._start()

    def _start(self) -> None:
        log = self.dir / "redis.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                stdout=out, stderr=subprocess.STDOUT)
        _wait_until(self._answers, "redis-server", log)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port).ping())
        except redis.ConnectionError:
            return False

    def restart(self, down_seconds: float) -> None:
        """Stop the server (its data is gone, as after a crash) and start it again on the
        same port after `down_seconds`."""
        self.process.kill()
        self.process.wait(10)
        time.sleep(down_seconds)
        self._start()

    def clients(self, name: str) -> int:
        """How many connections named `name` (Sluice names its connections) are open."""
        listed = redis.Redis(port=self.port).client_list()
        return sum(1 for client in listed if client.get("name") == name)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A throwaway cluster (fsync off) run by the `postgres` user when we are root."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed: run scripts/install-test-services")
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.getuid() == 0:  # the server refuses to run as root
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data, log = self.dir / "data", self.dir / "postgres.log"
        subprocess.run([*self.as_user, str(self.bin / "initdb"), "-D", str(data), "-U", "sluice",
                        "--auth=trust", "--encoding=UTF8", "--no-sync"],
                       check=True, capture_output=True)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*self.as_user, str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port),
                 "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=400"],
                stdout=out, stderr=subprocess.STDOUT)
        _wait_until(self._answers, "postgres", log)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://sluice@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database of this server."""
        return f"postgresql+psycopg://sluice@127.0.0.1:{self.port}/{database}"

    def _answers(self) -> bool:
        try:
            psycopg.connect(self.dsn(), connect_timeout=1).close()
            return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str, template: str | None = None) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            clause = f" TEMPLATE {template}" if template else ""
            connection.execute(f'CREATE DATABASE "{name}"{clause}')
        return self.url(name)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)
        shutil.rmtree(self.dir, ignore_errors=True)


class NginxServer:
    """nginx running `deploy/nginx.conf` as shipped, only its ports changed."""

    def __init__(self, upstream_port: int, connections: int = 256) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sluice-nginx-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        site = (ROOT / "deploy" / "nginx.conf").read_text()
        for shipped, here in (("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
                              ("listen 80;", f"listen 127.0.0.1:{self.port};")):
            if shipped not in site:
                raise RuntimeError(f"deploy/nginx.conf no longer has {shipped!r}")
            site = site.replace(shipped, here)
        (self.dir / "sluice.conf").write_text(site)
        temp = " ".join(f"{kind}_temp_path {self.dir}/{kind};"
                        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(
            f"worker_processes 1;\npid {self.dir}/nginx.pid;\n"
            f"error_log {self.dir}/error.log info;\nworker_rlimit_nofile {connections * 2};\n"
            f"events {{ worker_connections {connections}; }}\n"
            f"http {{ access_log {self.dir}/access.log; {temp}\n"
            f"       include {self.dir}/sluice.conf; }}\n")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        log = self.dir / "error.log"
        log.touch()
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_until(self._listening, "nginx", log)

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
