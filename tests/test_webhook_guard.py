"""The SSRF guard: which callback URLs Sluice refuses, at once or once resolved, and
proof that an accepted one is reached only at the address that was checked."""
from __future__ import annotations

import socket

import pytest

from services.webhooks import (HostUnresolvable, UrlRefused, check_url, post, resolve,
                               signature_headers)

from .network_guard import OffMachineConnection

PUBLIC = "93.184.215.14"
pytest_plugins = ["pytester"]


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[::1]/", "loopback"),
    ("http://[fd00::1]/", "private"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[fe80::1%25eth0]/", "zone"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://100.64.0.1/", "shared"),
    ("http://224.0.0.1/", "multicast"),
    ("http://2130706433/", "four decimal numbers"),
    ("http://0x7f.1/", "four decimal numbers"),
    ("http://127.1/", "four decimal numbers"),
    ("http://0177.0.0.1/", "four decimal numbers"),
    ("http://localhost:8000/", "this machine"),
    ("http://LOCALHOST./", "this machine"),
    ("http://api.localhost/", "this machine"),
    ("http://metadata.google.internal/", "metadata"),
    ("http://build.internal/", "private network"),
    ("http://intranet/", "fully qualified"),
    ("ftp://hooks.example/", "only http and https"),
    ("file:///etc/passwd", "only http and https"),
    ("javascript:alert(1)", "only http and https"),
    ("hooks.example/path", "only http and https"),
    ("http://user:pass@hooks.example/", "user name or password"),
    ("http://hooks.example@127.0.0.1/", "user name or password"),
    ("http:///path", "no host"),
    ("http://", "no host"),
    ("http://hooks.example:0/", "port"),
    ("http://hooks.example:65536/", "port"),
    ("http://hooks.example:http/", "port"),
    ("http://[::1/", "cannot be read"),
    ("http://hooks.example/a b", "printable ASCII"),
    ("http://hooks.example/\r\nX-Evil: 1", "printable ASCII"),
    ("http://hooks.example/" + "a" * 2048, "longer than 2048"),
    ("http://bad_host!.example/", "not a valid host name"),
])
def test_a_url_that_could_reach_a_private_place_is_refused_at_once(url, reason):
    with pytest.raises(UrlRefused, match=reason) as refused:
        check_url(url, allow_private=False)
    assert not refused.value.retryable


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/hook", "http://localhost/",
                                 "http://[::1]:9/", "http://10.0.0.1/", "http://intranet/"])
def test_private_hosts_are_accepted_when_the_operator_allows_them(url):
    assert check_url(url, allow_private=True).url == url


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://[fd00:ec2::254]/",
                                 "http://100.100.100.200/", "http://metadata.google.internal/",
                                 "http://[::ffff:169.254.169.254]/"])
def test_cloud_metadata_is_refused_even_when_private_hosts_are_allowed(url):
    with pytest.raises(UrlRefused, match="metadata"):
        check_url(url, allow_private=True)


def test_an_accepted_url_is_taken_apart_for_sending():
    target = check_url("https://Hooks.Example:8443/in/box?job=1#ignored", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path_and_query) == (
        "https", "hooks.example", 8443, "/in/box?job=1")
    assert target.host_header == "hooks.example:8443"
    assert check_url("http://hooks.example", allow_private=False).host_header == "hooks.example"
    assert check_url(f"http://{PUBLIC}/", allow_private=False).host == PUBLIC


@pytest.mark.parametrize(("addresses", "reason"), [
    (["127.0.0.1"], "loopback"),
    (["10.1.2.3"], "private"),
    ([PUBLIC, "10.1.2.3"], "private"),
    (["2606:2800:21f:cb07:6820:80da:af6b:8b2c", "::1"], "loopback"),
    (["::ffff:10.0.0.1"], "private"),
    (["169.254.169.254"], "metadata"),
])
def test_a_name_that_resolves_to_any_private_address_is_refused(net, addresses, reason):
    net.resolves("hooks.example", *addresses)
    target = check_url("http://hooks.example/hook", allow_private=False)
    with pytest.raises(UrlRefused, match=f"hooks.example resolves to .*{reason}") as refused:
        resolve(target, allow_private=False)
    assert not refused.value.retryable


def test_a_name_that_does_not_resolve_may_be_tried_again_later(net):
    target = check_url("http://gone.example/hook", allow_private=False)
    with pytest.raises(HostUnresolvable, match="cannot resolve gone.example") as refused:
        resolve(target, allow_private=False)
    assert refused.value.retryable


def test_a_private_name_is_pinned_when_the_operator_allows_it(net):
    net.resolves("hooks.test", "127.0.0.1")
    pinned = resolve(check_url("http://hooks.test:9/", allow_private=True), allow_private=True)
    assert pinned.address == "127.0.0.1"


def test_an_address_in_the_url_is_not_looked_up(net):
    pinned = resolve(check_url(f"http://{PUBLIC}/", allow_private=False), allow_private=False)
    assert pinned.address == PUBLIC
    assert net.lookups == []


def test_a_public_name_is_pinned_and_only_that_address_is_ever_contacted(net):
    net.resolves("hooks.example", PUBLIC)
    pinned = resolve(check_url("http://hooks.example/hook", allow_private=False),
                     allow_private=False)
    assert pinned.address == PUBLIC
    assert net.lookups == ["hooks.example"]  # once, by the guard

    # Sending to it would leave the machine: the test's socket guard stops it, and only
    # ever saw the pinned address, without a second lookup of the name.
    with pytest.raises(OffMachineConnection):
        post(pinned, b"{}", signature_headers(["whsec_MDEyMzQ1Njc4OWFiY2RlZg=="], "msg_1",
                                              1700000000, b"{}"))
    assert net.take_blocked() == [(PUBLIC, 80)]
    assert net.lookups == ["hooks.example"]


def test_the_network_guard_stops_every_connection_beyond_this_machine(net):
    net.resolves("far.example", PUBLIC)
    attempts = [lambda: socket.create_connection(("far.example", 443), timeout=1),
                lambda: socket.create_connection((PUBLIC, 80), timeout=1)]
    for method in ("connect", "connect_ex"):
        attempts.append(lambda method=method: getattr(socket.socket(), method)((PUBLIC, 80)))
    for attempt in attempts:
        with pytest.raises(OffMachineConnection):
            attempt()
    assert net.take_blocked() == [(PUBLIC, 443), (PUBLIC, 80), (PUBLIC, 80), (PUBLIC, 80)]


def test_the_network_guard_fails_a_test_that_tried_to_leave_the_machine(pytester):
    pytester.makepyfile("""
        import socket
        from tests.network_guard import net

        def test_swallows_the_error(net):
            try:
                socket.create_connection(("93.184.215.14", 80), timeout=1)
            except BaseException:
                pass
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*connections beyond this machine were attempted*"])
