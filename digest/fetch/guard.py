"""Where a fetch may connect, and for how long: the fetcher's network rules below HTTP.

Every connection, the first and every redirect hop, goes through ``Guard.connect_tcp``: it resolves
the host itself, checks each address, and connects only to an address it has checked, so a name
that resolves again to something else cannot slip past (DNS rebinding). Allowed are public
addresses, the networks the operator lists (``fetch_allowed_networks``), and loopback only on the
origin a source names itself by a loopback URL (``http://127.0.0.1:8000/feed``): a redirect into
loopback is refused. Every read and write on the connection is capped by the fetch's deadline, so a
server that trickles its status line or answers ``102 Processing`` forever is cut off in time, and
so is a name server that is slow to answer.
"""

from __future__ import annotations

import ipaddress
import math
import queue
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from digest.errors import FetchError
from digest.model.network import Address, Network, is_public, names_loopback, plain_address

Origin = tuple[str, str, int]
HINT = (
    "(only a source's own loopback URL may be fetched on loopback; for an intranet source, list its "
    "network in DIGEST_FETCH_ALLOWED_NETWORKS)."
)


class RefusedDestination(FetchError):
    """A hop would connect where no source may: never retried."""


def origin_of(url: httpx.URL) -> Origin:
    return (url.scheme, url.host.lower(), url.port or (443 if url.scheme == "https" else 80))


class Guard(httpcore.NetworkBackend):
    """The network backend of the fetcher's connection pool. Set ``begin`` before each fetch."""

    def __init__(
        self,
        allowed: Iterable[Network] = (),
        *,
        clock: Callable[[], float],
        resolve: Callable[[str, int], list[Address]] | None = None,
    ) -> None:
        self.allowed = tuple(allowed)
        self._clock = clock
        self._resolve = resolve or _resolve
        self._inner = httpcore.SyncBackend()
        self.deadline = math.inf
        self.configured: Origin | None = None
        self._loopback_origins: set[tuple[str, int]] = set()

    def begin(self, url: str, deadline: float) -> None:
        """Start a fetch of ``url`` (the source's own URL) that must end by ``deadline``."""
        self.configured = origin_of(httpx.URL(url))
        self.deadline = deadline

    def remaining(self, timeout: float | None) -> float:
        """``timeout`` capped by what is left of the deadline. Raises a timeout once it has passed."""
        left = self.deadline - self._clock()
        if left <= 0:
            raise httpcore.ReadTimeout("the fetch deadline has passed")
        return left if timeout is None else min(timeout, left)

    def check_hop(self, url: httpx.URL) -> None:
        """Refuse a hop that is not http(s), or that reuses a loopback connection another source opened."""
        if url.scheme not in {"http", "https"}:
            raise RefusedDestination(f"refused to follow a redirect to {url.scheme}: (only http and https).")
        _scheme, host, port = origin_of(url)
        if (host, port) in self._loopback_origins and not self._is_configured(host, port):
            raise RefusedDestination(f"refused to connect to {host}:{port} on loopback {HINT}")

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolved_within(self._resolve, host, port, self.remaining(timeout))
        timeout = self.remaining(timeout)
        permitted = [address for address in addresses if self._permits(address, host, port)]
        if not permitted:
            shown = ", ".join(str(address) for address in addresses[:3])
            raise RefusedDestination(
                f"refused to connect to {host}:{port} ({shown}): not a public address {HINT}"
            )
        failure: Exception | None = None
        for address in permitted:
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
                continue
            if plain_address(address).is_loopback:
                self._loopback_origins.add((host.lower(), port))
            return _DeadlineStream(stream, self)
        assert failure is not None
        raise failure

    def connect_unix_socket(self, *_args: Any, **_kwargs: Any) -> httpcore.NetworkStream:
        raise RefusedDestination("refused to connect to a Unix socket.")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def _permits(self, address: Address, host: str, port: int) -> bool:
        plain = plain_address(address)
        if is_public(plain) or any(plain in network or address in network for network in self.allowed):
            return True
        return plain.is_loopback and self._is_configured(host.lower(), port)

    def _is_configured(self, host: str, port: int) -> bool:
        return (
            self.configured is not None
            and names_loopback(self.configured[1])
            and (self.configured[1], self.configured[2]) == (host.lower(), port)
        )


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose every connection goes through ``guard``."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(trust_env=False)
        self._guard = guard
        # The pool httpx built has the default network backend; this one connects through the guard.
        self._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(), network_backend=guard)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """One hop. A redirect's own body is dropped unread: httpx reads it whole, decompressing
        without a limit, before following the redirect."""
        self._guard.check_hop(request.url)
        response = super().handle_request(request)
        if not (300 <= response.status_code < 400 and "location" in response.headers):
            return response
        response.close()
        dropped = {b"content-encoding", b"content-length", b"transfer-encoding"}
        headers = [(name, value) for name, value in response.headers.raw if name.lower() not in dropped]
        return httpx.Response(
            response.status_code, headers=headers, content=b"", extensions=response.extensions
        )


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the fetch's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, guard: Guard) -> None:
        self._inner = inner
        self._guard = guard

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._guard.remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._guard.remaining(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._guard.remaining(timeout))
        return _DeadlineStream(inner, self._guard)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _resolved_within(
    resolve: Callable[[str, int], list[Address]], host: str, port: int, timeout: float
) -> list[Address]:
    """``resolve(host, port)`` if it answers within ``timeout`` seconds. The C resolver cannot be
    interrupted, so it runs on a thread of its own, left to end by the resolver's own timeouts when
    a name server is slow. Raises httpcore.ConnectError or ConnectTimeout."""
    answer: queue.SimpleQueue[list[Address] | OSError] = queue.SimpleQueue()

    def lookup() -> None:
        try:
            answer.put(resolve(host, port))
        except OSError as exc:
            answer.put(exc)

    threading.Thread(target=lookup, name=f"digest-resolve-{host}", daemon=True).start()
    try:
        result = answer.get(timeout=timeout)
    except queue.Empty:
        raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout:.3g} s") from None
    if isinstance(result, OSError):
        raise httpcore.ConnectError(f"cannot resolve {host}: {result}")
    return result


def _resolve(host: str, port: int) -> list[Address]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[Address, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen.setdefault(ipaddress.ip_address(sockaddr[0].split("%")[0]), None)
    return list(seen)
