"""Fixtures: a fresh migrated database per test, the app and its client, a fake
provider server, and a real gunicorn + gevent Sluice for end-to-end tests."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app import create_app
from services.storage import database
from services.storage.migrate import upgrade_database
from services.streaming import streaming

from .fake_upstream import FakeUpstream

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file with every migration applied, copied for each test."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def make_app(tmp_path: Path, migrated_template: Path, fake_openai: FakeUpstream):
    """Builds apps on a fresh copy of the migrated database, with `overrides` on top."""
    apps = []

    def build(**overrides):
        db_path = tmp_path / f"sluice-{len(apps)}.db"
        shutil.copy(migrated_template, db_path)
        app = create_app({
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{db_path}",
            "OPENAI_BASE_URL": fake_openai.url + "/v1",
            "OPENAI_API_KEY": "sk-test",
            "SLUICE_DEMO_TOKENS_PER_SECOND": 2000.0,
            "SLUICE_PING_SECONDS": 0.5,
            "SLUICE_READ_TIMEOUT": 5.0,
            **overrides,
        })
        apps.append(app)
        return app

    yield build
    for app in apps:
        streaming(app).runs.shutdown(timeout=5)
        database(app).engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A Sluice served by real gunicorn with gevent workers, as `make run` serves it."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"gunicorn-{self.port}.log"
        self.env = {**os.environ, **env, "PORT": str(self.port)}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveServer:
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db-upgrade"],
                       cwd=ROOT, env=self.env, check=True, capture_output=True)
        with self.log_path.open("wb") as log:  # the child keeps its own copy of the handle
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start; its log:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=40)

    def assert_log_clean(self) -> None:
        """A traceback in the server's log is a bug even when every response looked fine."""
        log = self.log_path.read_text()
        assert "Traceback" not in log, log[log.index("Traceback") - 300:][:4000]

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.url + path, timeout=30, **kwargs)

    def new_thread(self, **fields) -> str:
        return self.api("POST", "/api/v1/threads", json=fields).json()["thread"]["id"]

    def messages(self, thread_id: str) -> list[dict]:
        return self.api("GET", f"/api/v1/threads/{thread_id}/messages").json()["messages"]

    def open_stream(self, thread_id: str, content: str, **fields) -> requests.Response:
        response = requests.post(
            f"{self.url}/api/v1/threads/{thread_id}/messages/stream",
            json={"content": content, **fields}, stream=True, timeout=30)
        assert response.status_code == 200, response.text
        return response

    def resume(self, stream_id: str, last_event_id: int) -> requests.Response:
        return requests.get(f"{self.url}/api/v1/streams/{stream_id}/events",
                            headers={"Last-Event-ID": str(last_event_id)}, stream=True,
                            timeout=30)

    def wait_until_settled(self, thread_id: str, timeout: float = 20) -> dict:
        """The last message once it is no longer streaming."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.messages(thread_id)[-1]
            if last["status"] != "streaming":
                return last
            time.sleep(0.05)
        raise AssertionError(f"message still streaming after {timeout}s: {last}")


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory,
                fake_openai: FakeUpstream) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("live")
    server = LiveServer(workdir, {
        "DATABASE_URL": f"sqlite:///{workdir / 'sluice.db'}",
        "OPENAI_BASE_URL": fake_openai.url + "/v1",
        "OPENAI_API_KEY": "sk-test",
        "SLUICE_DEMO_TOKENS_PER_SECOND": "80",
        "SLUICE_PING_SECONDS": "1",
        "SLUICE_READ_TIMEOUT": "10",
    }).start()
    yield server
    server.stop()
    server.assert_log_clean()
