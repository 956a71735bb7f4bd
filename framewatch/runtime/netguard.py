"""Which network addresses framewatch may talk to on a user's behalf (SSRF defence)."""

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# Never reached on a user's behalf, even where private addresses are allowed (development, an own network).
ALWAYS_BLOCKED = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, including cloud metadata (169.254.169.254)
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("224.0.0.0/4"),  # multicast
    ipaddress.ip_network("ff00::/8"),
)

NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and reaches: IPv4-mapped, 6to4 (2002::/16), Teredo (2001::/32:
    its server and its client) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48), whose last 32 bits are the IPv4 host."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address.teredo:
        found.extend(address.teredo)
    if any(address in network for network in NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast, reserved and unspecified ranges, and
    for an IPv6 address that embeds any of those."""
    embedded = embedded_ipv4(address)
    if embedded:
        return all(_is_public(inner) for inner in embedded)
    return _is_public(address)


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not (address.is_multicast or address.is_reserved)


def address_allowed(address: IPAddress, allow_private: bool) -> bool:
    for candidate in (address, *embedded_ipv4(address)):  # what a 6to4, Teredo or NAT64 address reaches too
        if any(candidate in network for network in ALWAYS_BLOCKED):
            return False
    return allow_private or is_public(address)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host name resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
