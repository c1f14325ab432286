"""Fixtures: a fresh migrated database per test, the app and its client, a fake
provider server, a real gunicorn + gevent Sluice for end-to-end tests, and `net`,
which resolves names from a table and keeps every connection on this machine.

Every test that uses an app or a live server runs twice, once per `backend`:
SQLite with the in-process event log, and PostgreSQL with Redis.
"""
from __future__ import annotations

import itertools
import uuid
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from app import create_app
from services.jobs import jobs
from services.storage import database
from services.storage.migrate import upgrade_database
from services.streaming import streaming

from .browser import chromium, page, page_server  # noqa: F401 (fixtures for the page tests)
from .fake_upstream import FakeUpstream
from .live_server import LiveServer
from .network_guard import net  # noqa: F401 (fixture: resolution from a table, no packet leaves)
from .services import PostgresServer, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


_DATABASES = itertools.count()


@dataclass
class Backend:
    """Where an app keeps its data: `new_database()` gives a fresh, migrated one."""

    name: str
    new_database: Callable[[], str]
    redis_url: str | None = None


@pytest.fixture(scope="session", params=["sqlite", "postgres+redis"])
def backend(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Backend:
    # A session fixture with parameters may be set up more than once in a session (a
    # worker of `pytest -n` takes the files in its own order): every database it makes
    # has a name no earlier setup used.
    counter = _DATABASES
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("db") / "template.db"
        upgrade_database(f"sqlite:///{template}")

        def new_sqlite() -> str:
            path = tmp_path_factory.getbasetemp() / f"sluice-{next(counter)}.db"
            shutil.copy(template, path)
            return f"sqlite:///{path}"
        return Backend("sqlite", new_sqlite)

    postgres: PostgresServer = request.getfixturevalue("postgres_server")
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    template = f"sluice_template_{next(counter)}"
    upgrade_database(postgres.create_database(template))

    def new_postgres() -> str:
        return postgres.create_database(f"sluice_{next(counter)}", template=template)
    return Backend("postgres+redis", new_postgres, redis_server.url)


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeUpstream]:
    server = FakeUpstream().start()
    yield server
    server.stop()


@pytest.fixture
def make_app(backend: Backend, fake_openai: FakeUpstream):
    """Builds apps on a fresh migrated database of the backend, with `overrides` on top."""
    apps = []

    def build(**overrides):
        app = create_app({
            "TESTING": True,
            "DATABASE_URL": backend.new_database(),
            "REDIS_URL": backend.redis_url,
            "OPENAI_BASE_URL": fake_openai.url + "/v1",
            "OPENAI_API_KEY": "sk-test",
            "SLUICE_DEMO_TOKENS_PER_SECOND": 2000.0,
            "SLUICE_PING_SECONDS": 0.5,
            "SLUICE_READ_TIMEOUT": 5.0,
            # Apps of one test run share a Redis: each gets a job queue of its own.
            "SLUICE_JOB_QUEUE": f"jobs-{uuid.uuid4().hex[:12]}",
            **overrides,
        })
        apps.append(app)
        return app

    yield build
    for app in apps:
        jobs(app).close()
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

[models."openai/ttft-silent"]
first_token_timeout = 1
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

# Connecting to these never finishes; only a cancel or the deadline ends the wait.
[models."openai/connecting-forever"]
base_url = "http://127.0.0.1:{unconnectable_port}/v1"
connect_timeout = 60
retry_attempts = 1

[models."openai/connecting-past-deadline"]
base_url = "http://127.0.0.1:{unconnectable_port}/v1"
connect_timeout = 60
first_token_timeout = 1
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
def start_server(backend: Backend, fake_openai: FakeUpstream, unconnectable_port: int,
                 tmp_path_factory: pytest.TempPathFactory):
    """Starts Sluice servers on the backend (each on a database of its own unless one is
    given); all are stopped at the end of the session, and their logs must be clean."""
    workdir = tmp_path_factory.mktemp("live")
    models_file = workdir / "models.toml"
    models_file.write_text(MODELS_FILE.format(unconnectable_port=unconnectable_port))
    servers: list[LiveServer] = []

    def start(database_url: str | None = None, **env: str) -> LiveServer:
        server = LiveServer(workdir, {
            "DATABASE_URL": database_url or backend.new_database(),
            "REDIS_URL": backend.redis_url or "",
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
            "SLUICE_JOB_QUEUE": f"jobs-{uuid.uuid4().hex[:12]}",
            **env,
        })
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
    for server in servers:
        server.assert_log_clean()


@pytest.fixture(scope="session")
def live_server(start_server) -> LiveServer:
    return start_server()
