"""Which URLs Sluice may POST to: the guard against server-side request forgery.

A callback URL comes from a user, so without a guard it would let them make
Sluice's host send requests into its own network (a database's HTTP port, an
admin page, the cloud's metadata service with its credentials). Two checks:

- `check_url`, without DNS, when the URL is given: `http(s)` only, no
  credentials in it, and no host that is private by its very name or address
  (`400 invalid_callback_url` at once).
- `resolve`, before every attempt: the name is resolved once, every address it
  has must be public, and the attempt connects to the address checked
  (`PinnedTarget`), so a name cannot point somewhere else between the check
  and the connection (DNS rebinding).

`allow_private` (SLUICE_WEBHOOK_ALLOW_PRIVATE) lets private, loopback and
link-local hosts through, for tests and closed networks. Cloud metadata
services stay refused even then: nothing legitimate receives webhooks there,
and a closed network is usually a cloud network, where they hand out credentials.

Hosts refused by name: `localhost` and `*.localhost` (RFC 6761), `*.local`
(mDNS), `*.internal` (reserved by ICANN for private networks), `*.home.arpa`
(RFC 8375), and names without a dot, which only resolve through local search
domains or /etc/hosts. Each of these could only ever resolve to a private address.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud metadata services (AWS EC2 v4/v6 and ECS, GCP, Azure, Alibaba); always refused.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in (
    "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200"))
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal"})
PRIVATE_NAME_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


class UrlRefused(ValueError):
    """A URL Sluice will not send to; the message says why, for the user to read."""

    retryable = False


class HostUnresolvable(UrlRefused):
    """The host's name does not resolve now; it may later, so the attempt can be retried."""

    retryable = True


@dataclass(frozen=True)
class Target:
    """A checked URL, taken apart: where to connect and what to ask for."""

    scheme: str
    host: str  # lower case; an IPv6 address without its brackets
    port: int
    path_and_query: str
    url: str

    @property
    def host_header(self) -> str:
        """The `Host` to send: the name (an IPv6 address in brackets), and any port not
        the scheme's own."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class PinnedTarget:
    """A target and the one address it resolved to and that was checked: the only
    address a delivery may connect to."""

    target: Target
    address: str


def check_url(url: str, allow_private: bool) -> Target:
    """The URL as a `Target` if Sluice may send to it as far as can be told without
    DNS; `UrlRefused` saying why otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if not all("!" <= char <= "~" for char in url):
        raise UrlRefused("the URL may only hold printable ASCII without spaces: "
                         "percent-encode other characters, and write a domain in punycode")
    parts = _split(url)
    host, port = _host_of(parts), _port_of(parts)
    _refuse_private_host(host, allow_private)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, url)


def resolve(target: Target, allow_private: bool,
            resolver: Resolver | None = None) -> PinnedTarget:
    """Resolve the target's host once and pin it to the first address, if every address
    the name has may be sent to; `UrlRefused` (or `HostUnresolvable`) otherwise.

    `resolver` defaults to `socket.getaddrinfo` as it is at the call (gevent's under
    gunicorn, a test's stand-in under pytest).
    """
    literal = _ip_literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        addresses = _addresses_of(target, resolver or socket.getaddrinfo)
    for address in addresses:
        reason = refusal_reason(address, allow_private)
        if reason:
            where = f"{target.host} resolves to {address}, which" if literal is None else address
            raise UrlRefused(f"{where} is {reason}")
    return PinnedTarget(target, str(addresses[0]))


def refusal_reason(address: IPAddress, allow_private: bool) -> str | None:
    """Why Sluice may not connect to `address` ("a loopback address"), or None if it may."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal_reason(embedded, allow_private)
        return reason and f"{reason} ({embedded}, in IPv6 form)"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if allow_private:
        return None
    return _non_public_kind(address)


def _non_public_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is, or None for a public one."""
    kinds = (("a loopback address", address.is_loopback),
             ("a link-local address", address.is_link_local),
             ("an unspecified address", address.is_unspecified),
             ("a multicast address", address.is_multicast),
             ("a shared (carrier-grade NAT) address", address in SHARED_ADDRESS_SPACE),
             ("a site-local address", getattr(address, "is_site_local", False)),
             ("a private address", address.is_private),
             ("a reserved address", address.is_reserved),
             ("not a public address", not address.is_global))
    return next((kind for kind, applies in kinds if applies), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64): where it really leads."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _split(url: str) -> SplitResult:
    """The URL's parts, for an http(s) URL with a host and no credentials."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UrlRefused(f"the URL cannot be read: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        shown = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise UrlRefused(f"only http and https URLs are accepted, not {shown}")
    if "@" in parts.netloc:
        raise UrlRefused("the URL may not hold a user name or password (user:pass@)")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    return parts


def _port_of(parts: SplitResult) -> int:
    """The port the URL names, or its scheme's own."""
    try:
        port = parts.port
    except ValueError:
        raise UrlRefused("the URL's port is not a number from 1 to 65535") from None
    if port == 0:
        raise UrlRefused("the URL's port is not a number from 1 to 65535")
    return port or DEFAULT_PORTS[parts.scheme]


def _host_of(parts: SplitResult) -> str:
    """The URL's host, lower case, checked to be an IP address or a host name."""
    host = parts.hostname or ""
    if "[" in parts.netloc:
        if "%" in host:
            raise UrlRefused("an IPv6 address with a zone (%…) is not accepted")
        if not isinstance(_ip_literal(host), ipaddress.IPv6Address):
            raise UrlRefused(f"[{host}] is not an IPv6 address")
        return host
    labels = host.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        if _ip_literal(host) is None:  # 2130706433, 0x7f.1, 127.1, 0177.0.0.1, 1.2.3.4.5
            raise UrlRefused(f"{host} is not an address Sluice accepts: write an IPv4 "
                             "address as four decimal numbers, like 93.184.215.14")
        return host
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlRefused(f"{host} is not a valid host name")
    return host


def _refuse_private_host(host: str, allow_private: bool) -> None:
    """Refuse a host that is private by its address or by its very name."""
    literal = _ip_literal(host)
    if literal is not None:
        reason = refusal_reason(literal, allow_private)
        if reason:
            raise UrlRefused(f"{host} is {reason}")
        return
    name = host.removesuffix(".")
    if name in METADATA_NAMES:
        raise UrlRefused(f"{host} is a cloud metadata service")
    if allow_private:
        return
    if name == "localhost" or name.endswith(PRIVATE_NAME_SUFFIXES):
        raise UrlRefused(f"{host} is a name for this machine or a private network")
    if "." not in name:
        raise UrlRefused(f"{host} is a local name: give a fully qualified domain name")


def _ip_literal(host: str) -> IPAddress | None:
    """`host` as an IP address if it is written as one, in its canonical form."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _addresses_of(target: Target, resolver: Resolver) -> list[IPAddress]:
    """Every address the target's name resolves to, in the resolver's order."""
    try:
        answers = resolver(target.host, target.port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostUnresolvable(f"cannot resolve {target.host}: {exc}") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _name, sockaddr in answers:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
            if address not in addresses:
                addresses.append(address)
    if not addresses:
        raise HostUnresolvable(f"cannot resolve {target.host}: it has no IP address")
    return addresses
