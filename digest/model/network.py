"""Which network addresses a source may be fetched from: pure rules over ``ipaddress`` values."""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Networks from a comma-separated list (``10.0.0.0/8, fd00::/8``).

    Raises ValueError naming the item that is not a network.
    """
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP network; give networks comma-separated, e.g. 10.0.0.0/8,fd00::/8"
            ) from None
    return tuple(networks)


# Prefixes that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052) and IPv4-compatible.
_EMBEDDING = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))
# Not public whatever this Python's ipaddress says: local-use NAT64, site-local, IETF protocol space.
_NEVER_PUBLIC = (
    ipaddress.ip_network("64:ff9b:1::/48"),
    ipaddress.ip_network("fec0::/10"),
    ipaddress.ip_network("192.0.0.0/24"),
)


def plain_address(address: Address) -> Address:
    """The IPv4 address hidden in an IPv4-mapped, NAT64, IPv4-compatible, 6to4 or Teredo IPv6
    address, else ``address``."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        nat64, compatible = _EMBEDDING
        if address in nat64 or (address in compatible and int(address) > 1):  # not :: or ::1
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def is_public(address: Address) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local, reserved...)."""
    address = plain_address(address)
    if any(address in network for network in _NEVER_PUBLIC if network.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def names_loopback(host: str) -> bool:
    """True when the host as written is a loopback address or ``localhost``."""
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return plain_address(ipaddress.ip_address(host)).is_loopback
    except ValueError:
        return False
