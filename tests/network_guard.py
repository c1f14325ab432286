"""The `net` fixture: name resolution from a table the test fills, and a guard that
lets no connection leave this machine.

Tests of code that sends requests to URLs users give (webhooks, fetch_url) must
prove what the code refuses; if the code under test is broken, the guard still
stops the packet: a connect to anything but a loopback address raises
`OffMachineConnection` and fails the test when the fixture is torn down, unless
the test took the record of it with `net.take_blocked()`.

    def test_pinning(net):
        net.resolves("hooks.test", "127.0.0.1")
        net.resolves("two.test", "93.184.215.14", "10.0.0.1")
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest


class OffMachineConnection(AssertionError):
    """Something tried to connect beyond this machine during a test."""


class NetworkGuard:
    """A resolver table and the record of connections the guard stopped."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.lookups: list[str] = []  # the names looked up (an address needs no lookup)
        self.blocked: list[Any] = []

    def resolves(self, name: str, *addresses: str) -> None:
        """Make `name` resolve to `addresses`, in that order."""
        self.names[name.lower().removesuffix(".")] = list(addresses)

    def take_blocked(self) -> list[Any]:
        """The addresses connections were stopped to, forgotten once taken (a test that
        provokes one on purpose takes it, so that the teardown does not fail)."""
        blocked, self.blocked = self.blocked, []
        return blocked

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
        """`socket.getaddrinfo` from the table; IP addresses stand for themselves."""
        name = host.decode() if isinstance(host, bytes) else str(host)
        if _is_ip(name):
            addresses: list[str] | None = [name]
        else:
            self.lookups.append(name)
            addresses = self.names.get(name.lower().removesuffix("."))
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{name} is not in the test's table")
        number = int(port) if str(port or "0").isdigit() else 0
        answers = []
        for address in addresses:
            if ":" in address:
                answers.append((socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                (address, number, 0, 0)))
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "",
                                (address, number)))
        return [answer for answer in answers if family in (0, answer[0])]

    def check(self, address: Any, sock: socket.socket | None = None) -> None:
        """Let a connection to `address` through only if it stays on this machine; else
        close `sock` (the caller may not, as this is no OSError) and raise."""
        if isinstance(address, (str, bytes)):
            return  # a Unix socket's path
        host = str(address[0])
        if _is_ip(host) and ipaddress.ip_address(host.partition("%")[0]).is_loopback:
            return
        self.blocked.append(address)
        if sock is not None:
            sock.close()
        raise OffMachineConnection(f"a test tried to connect to {address!r}")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return False
    return True


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Resolution from a table, and no connection beyond loopback (see the module)."""
    guard = NetworkGuard()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def connect(sock: socket.socket, address: Any) -> None:
        guard.check(address, sock)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        guard.check(address, sock)
        return real_connect_ex(sock, address)

    def create_connection(address: tuple[Any, int], *args: Any, **kwargs: Any) -> socket.socket:
        for *_, sockaddr in guard.getaddrinfo(address[0], address[1]):
            guard.check(sockaddr)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield guard
    if guard.blocked:
        pytest.fail(f"connections beyond this machine were attempted: {guard.blocked!r}")
