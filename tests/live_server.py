"""A Sluice served by real gunicorn + gevent workers, for tests and benchmarks."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A Sluice served by real gunicorn with gevent workers, as `make run` serves it."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
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
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return self
            except requests.RequestException:  # not listening yet, or the worker still booting
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not start; its log:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=40)

    def assert_log_clean(self, since: int = 0) -> None:
        """A traceback in the server's log is a bug even when every response looked fine.
        `since`: a `log_size()` taken earlier, to look only at what came after it."""
        log = self.log_path.read_bytes()[since:].decode(errors="replace")
        assert "Traceback" not in log, log[max(0, log.index("Traceback") - 300):][:4000]

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """`flask --app wsgi ARGS…` against this server's database, as an operator runs it."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                              cwd=ROOT, env=self.env, input=input, capture_output=True,
                              text=True, timeout=60)

    def log_size(self) -> int:
        return self.log_path.stat().st_size

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

    def api_stream(self, path: str, body: dict) -> requests.Response:
        response = requests.post(self.url + path, json=body, stream=True, timeout=30)
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
