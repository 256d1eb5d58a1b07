"""C4: the address classifier and policy (pure), and the resolver's check of answers."""

from __future__ import annotations

import ipaddress

import pytest
from twisted.internet.error import DNSLookupError

from crawler.addresses import (
    EVERYTHING,
    NOTHING,
    address_kind,
    parse_host,
    parse_policy,
    parse_resolve,
)
from crawler.resolver import AddressRefused, GuardedResolver

LOOPBACK_ONLY = parse_policy("127.0.0.0/8")


@pytest.mark.parametrize(
    ("host", "address", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("127.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),
        ("0x7f000001", "127.0.0.1", "loopback"),
        ("0X7F.1", "127.0.0.1", "loopback"),
        ("0177.0.0.1", "127.0.0.1", "loopback"),
        ("127.0.0.1.", "127.0.0.1", "loopback"),
        ("[::1]", "::1", "loopback"),
        ("::1", "::1", "loopback"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "loopback"),
        ("[::ffff:7f00:1]", "::ffff:127.0.0.1", "loopback"),
        ("[::127.0.0.1]", "::127.0.0.1", "loopback"),  # IPv4-compatible
        ("[2002:7f00:1::]", "2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("[64:ff9b::a00:5]", "64:ff9b::a00:5", "private"),  # NAT64 of 10.0.0.5
        ("[fe80::1%25eth0]", "fe80::1", "link-local"),
        ("169.254.169.254", "169.254.169.254", "link-local"),
        ("10.0.0.5", "10.0.0.5", "private"),
        ("012.0.0.5", "10.0.0.5", "private"),
        ("172.16.3.4", "172.16.3.4", "private"),
        ("192.168.1.1", "192.168.1.1", "private"),
        ("100.64.0.1", "100.64.0.1", "carrier-grade NAT"),
        ("fc00::1", "fc00::1", "private"),
        ("[fd12:3456::1]", "fd12:3456::1", "private"),
        ("224.0.0.1", "224.0.0.1", "multicast"),
        ("[ff02::1]", "ff02::1", "multicast"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("0", "0.0.0.0", "unspecified"),
        ("[::]", "::", "unspecified"),
        ("0.1.2.3", "0.1.2.3", "reserved"),
        ("192.0.2.10", "192.0.2.10", "reserved"),
        ("198.51.100.7", "198.51.100.7", "reserved"),
        ("203.0.113.9", "203.0.113.9", "reserved"),
        ("198.18.0.1", "198.18.0.1", "reserved"),
        ("240.0.0.1", "240.0.0.1", "reserved"),
        ("255.255.255.255", "255.255.255.255", "reserved"),
        ("[2001:db8::1]", "2001:db8::1", "reserved"),
    ],
)
def test_every_spelling_of_a_non_public_address_is_recognised(host, address, kind):
    parsed = parse_host(host)
    assert parsed == ipaddress.ip_address(address)
    assert address_kind(parsed) == kind
    assert NOTHING.refusal(parsed) is not None
    assert EVERYTHING.refusal(parsed) is None


@pytest.mark.parametrize(
    "host", ["93.184.216.34", "8.8.8.8", "[2606:4700::1111]", "[::ffff:8.8.8.8]", "1.1.1.1."]
)
def test_public_addresses_are_allowed(host):
    parsed = parse_host(host)
    assert parsed is not None and address_kind(parsed) is None
    assert NOTHING.permits(parsed)


@pytest.mark.parametrize(
    "host",
    ["news.example", "localhost", "1.2.3.256", "08.1.1.1", "1_0.0.0.1", "1.2.3.4.5", "0x1g", ""],
)
def test_names_and_malformed_numbers_are_left_to_the_resolver(host):
    assert parse_host(host) is None


def test_refusal_names_the_address_its_kind_and_every_way_to_allow_it():
    message = NOTHING.refusal(ipaddress.ip_address("10.0.0.5"))
    assert message is not None
    assert "10.0.0.5 is a private address" in message
    for way in (
        "--allow-private-addresses",
        "allow_private_addresses = true",
        "[crawler]",
        "CRAWLER_ALLOW_PRIVATE_ADDRESSES=1",
    ):
        assert way in message
    named = NOTHING.refusal(ipaddress.ip_address("169.254.169.254"), "meta.example")
    assert named is not None and named.startswith(
        "meta.example resolves to 169.254.169.254, a link-local address"
    )


def test_an_allow_list_allows_its_networks_only():
    assert LOOPBACK_ONLY.permits(ipaddress.ip_address("127.0.0.1"))
    assert LOOPBACK_ONLY.permits(ipaddress.ip_address("::ffff:127.0.0.1"))  # judged inside
    for refused in ("10.0.0.5", "169.254.169.254", "::1", "100.64.0.1", "0.0.0.0"):
        assert not LOOPBACK_ONLY.permits(ipaddress.ip_address(refused)), refused
    lan = parse_policy(["10.1.0.0/16", "fd00::/8"])
    assert lan.permits(ipaddress.ip_address("10.1.2.3"))
    assert lan.permits(ipaddress.ip_address("fd00::5"))
    assert not lan.permits(ipaddress.ip_address("10.2.0.1"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", "all"),
        ("true", "all"),
        ("yes", "all"),
        (True, "all"),
        ("0", "none"),
        ("", "none"),
        ("false", "none"),
        (False, "none"),
        ("127.0.0.0/8", "127.0.0.0/8"),
        ("127.0.0.0/8, 10.0.0.0/8", "127.0.0.0/8,10.0.0.0/8"),
        ("10.0.0.7", "10.0.0.7/32"),
        (["192.168.0.0/16"], "192.168.0.0/16"),
    ],
)
def test_policy_values(value, expected):
    assert parse_policy(value).describe() == expected


@pytest.mark.parametrize("value", ["maybe", "10.0.0.0/33", "127.0.0.0/8,nonsense", [5]])
def test_bad_policy_values_are_named(value):
    with pytest.raises(ValueError, match="expected"):
        parse_policy(value)


def test_resolve_overrides_like_curl():
    assert parse_resolve("news.example:127.0.0.1, Dead.Example.:") == {
        "news.example": "127.0.0.1",
        "dead.example": None,
    }
    for bad in ("news.example", "news.example:not-an-ip", "127.0.0.1:127.0.0.1", ":1.2.3.4"):
        with pytest.raises(ValueError):
            parse_resolve(bad)


# --- the resolver: answers are checked at connect time -----------------------------------


def _resolve(resolver: GuardedResolver, name: str) -> str | BaseException:
    """The outcome of a lookup (overridden names answer synchronously: no DNS, no reactor)."""
    outcome: list[str | BaseException] = []
    resolver.getHostByName(name).addCallbacks(outcome.append, lambda f: outcome.append(f.value))
    assert outcome, "the lookup did not complete synchronously"
    return outcome[0]


def _resolver(policy=NOTHING, overrides=None) -> GuardedResolver:
    from twisted.internet import reactor

    return GuardedResolver(reactor, 0, 1.0, policy, overrides)


def test_a_name_resolving_to_a_private_address_is_refused():
    resolver = _resolver(overrides={"news.example": "10.0.0.5", "ok.example": "93.184.216.34"})
    refused = _resolve(resolver, "news.example")
    assert isinstance(refused, AddressRefused) and isinstance(refused, DNSLookupError)
    assert "news.example resolves to 10.0.0.5, a private address" in str(refused)
    assert resolver.refusal("NEWS.example.") is not None
    assert _resolve(resolver, "ok.example") == "93.184.216.34"
    assert resolver.refusal("ok.example") is None


def test_rebinding_is_refused_because_each_answer_is_checked_when_connecting():
    # Public at the first lookup, private at the next: the answer handed to the
    # connection is the one checked, so the private one never gets connected to.
    resolver = _resolver(LOOPBACK_ONLY, {"flip.example": "93.184.216.34"})
    assert _resolve(resolver, "flip.example") == "93.184.216.34"
    resolver.overrides["flip.example"] = "169.254.169.254"
    assert isinstance(_resolve(resolver, "flip.example"), AddressRefused)
    resolver.overrides["flip.example"] = "127.0.0.1"  # on the allow-list
    assert _resolve(resolver, "flip.example") == "127.0.0.1"


def test_an_override_to_nothing_is_a_lookup_failure_not_a_refusal():
    resolver = _resolver(overrides={"dead.example": None})
    failure = _resolve(resolver, "dead.example")
    assert isinstance(failure, DNSLookupError) and not isinstance(failure, AddressRefused)
    assert resolver.refusal("dead.example") is None
