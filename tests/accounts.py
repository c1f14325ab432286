"""Users and keys for tests of a server started with SLUICE_AUTH=on: made with the
operator's CLI, used with `requests` as a program (key) or a browser (cookie) would."""
from __future__ import annotations

from dataclasses import dataclass

import requests

from .live_server import LiveServer

PASSWORD = "correct horse battery"


@dataclass
class Account:
    name: str
    key_id: str
    key: str  # the secret, sk-sluice-…
    server: LiveServer

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return self.server.api(method, path, headers=headers, **kwargs)

    def browser(self) -> tuple[requests.Session, str]:
        """A signed-in cookie session and its CSRF token."""
        session = requests.Session()
        response = session.post(self.server.url + "/login", timeout=30,
                                json={"name": self.name, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return session, response.json()["csrf_token"]


def create_account(server: LiveServer, name: str, *key_options: str) -> Account:
    """A new user with one API key, made with `flask users create` and `keys create`."""
    made = server.cli("users", "create", name, "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    return Account(name, *new_key(server, name, *key_options), server)


def new_key(server: LiveServer, user: str, *options: str) -> tuple[str, str]:
    """(key id, secret) of a new key for `user`."""
    made = server.cli("keys", "create", "--user", user, *options)
    assert made.returncode == 0, made.stderr
    key_id, secret = made.stdout.split()
    return key_id, secret
