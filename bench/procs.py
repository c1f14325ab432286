"""What the benchmark reads about processes from /proc: CPU time, RSS, children, sockets.

Linux only. Every reader returns None (or an empty set) for a process that has
gone away, so a crashed worker shows up as a missing number, not a traceback.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the name may contain spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def total_cpu(pids: list[int]) -> float | None:
    values = [cpu_seconds(pid) for pid in pids]
    return None if any(v is None for v in values) else sum(v for v in values if v)


def rss_kib(pid: int) -> int | None:
    """Resident memory of one process (VmRSS), in KiB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def children(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's worker, nginx's worker)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets `pid` has open."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def local_ports_to(pid: int, remote_port: int) -> set[int]:
    """Local ports of `pid`'s TCP connections to 127.0.0.1:`remote_port`.

    A socket belongs to the process that holds its inode in /proc/<pid>/fd; the
    connection table (/proc/<pid>/net/tcp) gives that inode's ports.
    """
    inodes = _socket_inodes(pid)
    ports = set()
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return ports
    for row in table:
        cols = row.split()
        local, remote, inode = cols[1], cols[2], cols[9]
        if inode in inodes and int(remote.split(":")[1], 16) == remote_port:
            ports.add(int(local.split(":")[1], 16))
    return ports


def redis_clients_of(client: redis.Redis, redis_port: int, pid: int) -> int | None:
    """How many of the Redis server's clients (CLIENT LIST) are connections of `pid`.

    A client's `addr` is the peer's ip:port; it is `pid`'s when that port is the
    local port of a socket `pid` holds to the Redis port.
    """
    try:
        listed = client.client_list()
    except redis.RedisError:
        return None
    ports = local_ports_to(pid, redis_port)
    return sum(1 for entry in listed if int(entry["addr"].rsplit(":", 1)[1]) in ports)


class PeakSampler:
    """Samples a value in a background thread while a measurement runs; keeps the peak."""

    def __init__(self, sample: Callable[[], int | None], interval: float = 0.25) -> None:
        self.sample = sample
        self.interval = interval
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._take()

    def _take(self) -> None:
        value = self.sample()
        if value is not None and (self.peak is None or value > self.peak):
            self.peak = value

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._take()


def settle(seconds: float) -> None:
    """Give a server a moment to finish background work before memory is read."""
    time.sleep(seconds)
