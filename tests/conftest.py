"""Fixtures: a fresh migrated database per test, the app and its client, a fake
provider server, and a real gunicorn + gevent Sluice for end-to-end tests."""
from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import create_app
from services.storage import database
from services.storage.migrate import upgrade_database
from services.streaming import streaming

from .fake_upstream import FakeUpstream
from .live_server import LiveServer


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
        streaming(app).stop()
        database(app).engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def unconnectable_port() -> Iterator[int]:
    """A local port that neither accepts nor refuses: connecting to it times out.

    A listener with a backlog of 0 whose queue is already full drops new SYNs.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


# Per-model settings the end-to-end tests exercise; each test uses its own models.
MODELS_FILE = """
[models."openai/ttft-slow"]
first_token_timeout = 0.5
retry_attempts = 1

[models."openai/idle-gap"]
idle_timeout = 0.5
retry_attempts = 1

[models."openai/too-long"]
total_timeout = 1.0

[models."openai/unconnectable"]
base_url = "http://127.0.0.1:{unconnectable_port}/v1"
connect_timeout = 0.5
retry_attempts = 1

[models."openai/primary-down"]
fallbacks = ["anthropic/backup-up"]

[models."openai/all-down"]
fallbacks = ["ollama/also-down"]

[models."openai/no-stream"]
streaming = false
temperature = 0.3
max_tokens = 99
"""


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeUpstream,
                unconnectable_port: int) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("live")
    models_file = workdir / "models.toml"
    models_file.write_text(MODELS_FILE.format(unconnectable_port=unconnectable_port))
    server = LiveServer(workdir, {
        "DATABASE_URL": f"sqlite:///{workdir / 'sluice.db'}",
        "OPENAI_BASE_URL": fake_openai.url + "/v1",
        "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": fake_openai.url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "OLLAMA_HOST": fake_openai.url,
        "SLUICE_MODELS_FILE": str(models_file),
        "SLUICE_DEMO_TOKENS_PER_SECOND": "80",
        "SLUICE_PING_SECONDS": "1",
        "SLUICE_READ_TIMEOUT": "10",
        "SLUICE_RETRY_BASE_SECONDS": "0.05",
        "SLUICE_RETRY_MAX_SECONDS": "2",
    }).start()
    yield server
    server.stop()
    server.assert_log_clean()
