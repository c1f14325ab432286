"""Who may read `GET /metrics`: the bearer of `SLUICE_METRICS_TOKEN` when it is set,
else clients on this host that no proxy relayed."""
from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from ..errors import ApiError

# nginx (deploy/nginx.conf) connects from 127.0.0.1 for every client and says whom
# for in one of these; a request that carries one is not a local client's.
_PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def check_access(remote_addr: str | None, headers: Mapping[str, str], token: str | None) -> None:
    """With a token, its bearer may read, from anywhere, and nobody else (401); without
    one, a client on this host may, unless a proxy relayed it (403)."""
    if token:
        scheme, _, given = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()):
            raise ApiError(401, "unauthorized",
                           "Reading metrics needs Authorization: Bearer <SLUICE_METRICS_TOKEN>.",
                           headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return
    if not _local_client(remote_addr, headers):
        raise ApiError(403, "forbidden",
                       "Metrics are served to clients on this host only; set "
                       "SLUICE_METRICS_TOKEN to read them from elsewhere or through a proxy.")


def _local_client(remote_addr: str | None, headers: Mapping[str, str]) -> bool:
    if any(name in headers for name in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False  # no address (a Unix socket): nothing says who it is
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
