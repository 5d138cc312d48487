"""The fetcher's rules that need no server: which addresses are public, and decoding under a cap."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import threading
import time
import zlib

import httpcore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.errors import FetchError
from digest.fetch.decode import decoded
from digest.fetch.guard import Guard, RefusedDestination
from digest.model.network import is_public, names_loopback, parse_networks


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fd00::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "2002:a00:1::",  # 6to4 around 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
        "64:ff9b::a00:1",
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "64:ff9b:1::1",
        "fec0::1",
        "192.0.0.8",
    ],
)
def test_private_loopback_link_local_and_disguised_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700::6810:85e5", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]
)
def test_routable_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "feeds.localhost", "[::1]", "127.8.9.10"])
def test_loopback_is_recognised_as_written(host: str) -> None:
    assert names_loopback(host)


@pytest.mark.parametrize("host", ["example.org", "10.0.0.1", "localhost.example.org"])
def test_other_hosts_do_not_name_loopback(host: str) -> None:
    assert not names_loopback(host)


def test_allowed_networks_are_read_comma_separated_and_a_bad_one_is_named() -> None:
    assert [str(n) for n in parse_networks(" 10.0.0.0/8, fd00::/8 ,")] == ["10.0.0.0/8", "fd00::/8"]
    with pytest.raises(ValueError, match="'intranet' is not an IP network"):
        parse_networks("10.0.0.0/8,intranet")


def test_a_public_name_that_resolves_to_a_private_address_is_refused_before_connecting() -> None:
    guard = Guard(clock=lambda: 0.0, resolve=lambda _host, _port: [ipaddress.ip_address("10.0.0.7")])
    guard.begin("https://feeds.example.org/rss", deadline=10.0)
    with pytest.raises(RefusedDestination, match=r"feeds\.example\.org:443 \(10\.0\.0\.7\)"):
        guard.connect_tcp("feeds.example.org", 443)


def test_a_public_name_that_resolves_to_loopback_is_refused_even_as_the_sources_own_url() -> None:
    guard = Guard(clock=lambda: 0.0, resolve=lambda _host, _port: [ipaddress.ip_address("127.0.0.1")])
    guard.begin("http://rebind.example.org/rss", deadline=10.0)
    with pytest.raises(RefusedDestination):
        guard.connect_tcp("rebind.example.org", 80)


def test_no_connection_is_opened_once_the_deadline_has_passed() -> None:
    guard = Guard(clock=lambda: 11.0, resolve=lambda _host, _port: [ipaddress.ip_address("93.184.216.34")])
    guard.begin("https://example.org/rss", deadline=10.0)
    with pytest.raises(Exception, match="deadline"):
        guard.connect_tcp("example.org", 443)


def test_a_name_server_slower_than_the_deadline_ends_the_fetch_at_the_deadline() -> None:
    answered = threading.Event()

    def slow_name_server(_host: str, _port: int) -> list:
        answered.wait(30)  # a hostile name server answers late, or never
        return [ipaddress.ip_address("93.184.216.34")]

    guard = Guard(clock=time.monotonic, resolve=slow_name_server)
    guard.begin("https://slow-dns.example.org/rss", deadline=time.monotonic() + 0.2)
    try:
        with pytest.raises(httpcore.ConnectTimeout, match="resolving slow-dns.example.org took over"):
            guard.connect_tcp("slow-dns.example.org", 443)
    finally:
        answered.set()


def test_a_name_that_does_not_resolve_says_so() -> None:
    def no_such_name(host: str, _port: int) -> list:
        raise socket.gaierror(-2, "Name or service not known")

    guard = Guard(clock=time.monotonic, resolve=no_such_name)
    guard.begin("https://nowhere.example.org/rss", deadline=time.monotonic() + 10)
    with pytest.raises(httpcore.ConnectError, match="cannot resolve nowhere.example.org: .*not known"):
        guard.connect_tcp("nowhere.example.org", 443)


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@given(st.binary(max_size=5000), st.integers(1, 700), st.sampled_from(["gzip", "deflate", "raw-deflate"]))
def test_a_body_within_the_cap_decodes_to_what_was_sent(body: bytes, chunk: int, encoding: str) -> None:
    if encoding == "gzip":
        wire = gzip.compress(body)
    elif encoding == "deflate":
        wire = zlib.compress(body)
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        wire = packer.compress(body) + packer.flush()
    name = "gzip" if encoding == "gzip" else "deflate"
    assert b"".join(decoded(chunked(wire, chunk), name, 5000, "src", "cap")) == body


@given(st.integers(5001, 3_000_000), st.integers(1, 70_000))
def test_a_body_over_the_cap_is_refused_without_yielding_more_than_the_cap(size: int, chunk: int) -> None:
    wire = gzip.compress(bytes(size))
    produced = 0
    with pytest.raises(FetchError, match="inflates to over 5,000 bytes"):
        for piece in decoded(chunked(wire, chunk), "gzip", 5000, "src", "cap"):
            produced += len(piece)
    assert produced <= 5000


@pytest.mark.parametrize(
    ("encoding", "said"),
    [("gzip, gzip", "encoded 2 times over"), ("br", "did not ask for"), ("gzip,deflate", "2 times")],
)
def test_stacked_and_unasked_encodings_are_refused(encoding: str, said: str) -> None:
    with pytest.raises(FetchError, match=said):
        list(decoded([b"x"], encoding, 5000, "src", "cap"))


def test_corrupt_compressed_data_is_reported_as_such() -> None:
    with pytest.raises(FetchError, match="not valid gzip"):
        list(decoded([b"\x1f\x8b\x08\x00garbage-garbage"], "gzip", 5000, "src", "cap"))


def test_identity_is_passed_through() -> None:
    assert list(decoded([b"a", b"b"], "identity", 1, "src", "cap")) == [b"a", b"b"]
