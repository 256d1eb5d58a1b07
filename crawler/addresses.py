"""Which network addresses the crawler may connect to: pure parsing and classification.

A monitor that fetches URLs from feeds, sitemaps and redirects it does not control must
not become a way into the network it runs in (SSRF): by default a host that is, or
resolves to, a loopback, private, link-local (cloud metadata at 169.254.169.254),
carrier-grade NAT, multicast, reserved or unspecified address is refused.
:class:`AddressPolicy` says what is allowed instead: nothing (the default), everything,
or some networks (``127.0.0.0/8``, ``10.1.0.0/16``).

Hosts are read in every spelling the C library's ``inet_aton`` and browsers accept
(``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, a trailing dot) and IPv6 in
brackets, including IPv4 addresses embedded in IPv6 (mapped, compatible, 6to4, NAT64,
Teredo), which are judged by the IPv4 address inside.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# How to allow a refused address; every refusal message names these.
HOW_TO_ALLOW = (
    "to allow it, use --allow-private-addresses, allow_private_addresses = true in the "
    "[crawler] table of sources.toml, or CRAWLER_ALLOW_PRIVATE_ADDRESSES=1 "
    "(or a comma list of networks such as 10.0.0.0/8)"
)

# (network, kind), most specific first where ranges nest.
_V4: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "reserved"),  # "this network"
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("169.254.0.0/16", "link-local"),  # includes 169.254.169.254, cloud metadata
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "reserved"),  # documentation
    ("198.51.100.0/24", "reserved"),  # documentation
    ("203.0.113.0/24", "reserved"),  # documentation
    ("198.18.0.0/15", "reserved"),  # benchmarking
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relays
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "reserved"),  # broadcast
    ("240.0.0.0/4", "reserved"),
)
_V6: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),  # local-use NAT64
    ("100::/64", "reserved"),  # discard-only
    ("2001:db8::/32", "reserved"),  # documentation
    ("2001:2::/48", "reserved"),  # benchmarking
    ("3fff::/20", "reserved"),  # documentation
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # deprecated site-local
    ("ff00::/8", "multicast"),
)
_V4_TABLE = tuple((ipaddress.IPv4Network(net), kind) for net, kind in _V4)
_V6_TABLE = tuple((ipaddress.IPv6Network(net), kind) for net, kind in _V6)
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL = re.compile(r"0[0-9]+")
_OCTAL_DIGITS = re.compile(r"0[0-7]+")
_DECIMAL = re.compile(r"[0-9]+")


def parse_host(host: str) -> IPAddress | None:
    """The IP address a URL host names, in any spelling; None when it is a host name.

    ``host`` is the host part of a URL (``urlsplit(url).hostname`` or with brackets).
    """
    text = host.strip().lower()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])  # drop a zone id
        except ValueError:
            return None
    return _parse_ipv4(text.removesuffix("."))


def _parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """``inet_aton``: 1 to 4 parts, each decimal, octal (leading 0) or hex (0x); the
    last part fills the remaining bytes (``127.1`` is 127.0.0.1)."""
    parts = text.split(".")
    if not text or len(parts) > 4:
        return None
    numbers = []
    for part in parts:
        number = _parse_number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = 0
    for n in leading:
        value = value * 256 + n
    value = value * 256 ** (4 - len(leading)) + last
    return ipaddress.IPv4Address(value)


def _parse_number(part: str) -> int | None:
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCTAL.fullmatch(part):
        return int(part, 8) if _OCTAL_DIGITS.fullmatch(part) else None
    return int(part) if _DECIMAL.fullmatch(part) else None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv6 one (mapped, compatible, 6to4, NAT64, Teredo)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _V4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one ("loopback", "private", "link-local",
    "carrier-grade NAT", "multicast", "reserved", "unspecified"), or None if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        for network, kind in _V6_TABLE:
            if address in network:
                return kind
        inner = embedded_ipv4(address)
        return address_kind(inner) if inner is not None else None
    for v4network, kind in _V4_TABLE:
        if address in v4network:
            return kind
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public addresses may be contacted: ``"none"`` (the default),
    ``"all"``, or a tuple of networks. Public addresses are always allowed."""

    allowed: Literal["none", "all"] | tuple[IPNetwork, ...] = "none"

    def permits(self, address: IPAddress) -> bool:
        """Whether a connection to ``address`` is allowed."""
        if self.allowed == "all" or address_kind(address) is None:
            return True
        if self.allowed == "none":
            return False
        candidates = [address]
        inner = embedded_ipv4(address)
        if inner is not None:
            candidates.append(inner)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.allowed
        )

    def refusal(self, address: IPAddress, name: str | None = None) -> str | None:
        """Why ``address`` (the answer for host ``name``, if given) is refused, as one
        line naming how to allow it; None when it is allowed."""
        if self.permits(address):
            return None
        kind = address_kind(address)
        what = (
            f"{name} resolves to {address}, a {kind} address"
            if name
            else (f"{address} is a {kind} address")
        )
        return f"{what}, refused; {HOW_TO_ALLOW}"

    def describe(self) -> str:
        """``none``, ``all`` or the comma list of networks, as accepted by :func:`parse_policy`."""
        if isinstance(self.allowed, str):
            return self.allowed
        return ",".join(str(network) for network in self.allowed)


NOTHING = AddressPolicy()
EVERYTHING = AddressPolicy("all")
_TRUE = {"1", "true", "yes", "on", "all"}
_FALSE = {"", "0", "false", "no", "off", "none"}


def parse_policy(value: str | bool | Iterable[str]) -> AddressPolicy:
    """A policy from a flag (``true``/``1``/``false``/``0``), a comma list of networks
    (``127.0.0.0/8,10.0.0.0/8``; a bare address is one host), or a list of them.

    Raises ValueError naming a bad entry.
    """
    if isinstance(value, bool):
        return EVERYTHING if value else NOTHING
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return EVERYTHING
        if lowered in _FALSE:
            return NOTHING
        items = [item.strip() for item in value.split(",") if item.strip()]
    else:
        items = list(value)
    networks = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"expected a network such as 10.0.0.0/8, got {item!r}")
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"expected true, false or networks such as 10.0.0.0/8, got {item!r}"
            ) from None
    return AddressPolicy(tuple(networks)) if networks else NOTHING


def parse_resolve(entries: str | Iterable[str]) -> dict[str, str | None]:
    """Host name overrides, like curl's ``--resolve``: ``HOST:ADDRESS`` entries (a comma
    list or a list) mapping a name to an IPv4 address; ``HOST:`` makes the name resolve
    to nothing (a lookup failure). Raises ValueError naming a bad entry."""
    items = entries.split(",") if isinstance(entries, str) else list(entries)
    mapping: dict[str, str | None] = {}
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        host, sep, address = item.partition(":")
        host = host.strip().lower().rstrip(".")
        if not sep or not host or parse_host(host) is not None:
            raise ValueError(f"expected HOST:ADDRESS (e.g. news.example:127.0.0.1), got {item!r}")
        address = address.strip()
        if address:
            try:
                address = str(ipaddress.IPv4Address(address))
            except ValueError:
                raise ValueError(f"{item!r}: {address!r} is not an IPv4 address") from None
        mapping[host] = address or None
    return mapping
