"""The crawler's DNS resolver: Scrapy's caching resolver plus the private-address guard.

Every host name a crawl connects to is looked up here, right before the connection, and
Twisted connects to exactly the address returned: an answer the :class:`AddressPolicy`
refuses (a name resolving to 10.0.0.5, 127.0.0.1 or 169.254.169.254) fails the lookup,
so a name that pointed to a public address when a link was found and to a private one
now (DNS rebinding) is refused too. Literal addresses in URLs never reach a resolver;
:class:`crawler.middlewares.AddressGuardMiddleware` checks those.

``RESOLVE`` overrides lookups like curl's ``--resolve`` (``news.example`` -> 127.0.0.1,
or to nothing); overridden answers pass the same policy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError

from crawler.addresses import NOTHING, AddressPolicy, parse_host

log = logging.getLogger(__name__)
MAX_REMEMBERED = 10_000  # refusals kept for explaining failed lookups


class AddressRefused(DNSLookupError):
    """A host name resolved to an address the policy refuses."""


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's ``CachingThreadedResolver`` that refuses non-public answers and honours
    host overrides. Set as ``TWISTED_DNS_RESOLVER``; reads ``ADDRESS_POLICY`` and
    ``RESOLVE``."""

    def __init__(
        self,
        reactor: Any,
        cache_size: int,
        timeout: float,
        policy: AddressPolicy = NOTHING,
        overrides: Mapping[str, str | None] | None = None,
    ) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.policy = policy
        self.overrides = {_key(host): address for host, address in (overrides or {}).items()}
        self._refused: dict[str, str] = {}

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> GuardedResolver:
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        policy = settings.get("ADDRESS_POLICY") or NOTHING
        return cls(
            reactor,
            cache_size,
            settings.getfloat("DNS_TIMEOUT"),
            policy,
            settings.getdict("RESOLVE"),
        )

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[str]:  # noqa: N802
        key = _key(name)
        if key in self.overrides:
            address = self.overrides[key]
            if address is None:
                failure = DNSLookupError(f"{name}: resolves to nothing (a resolve override)")
                result: defer.Deferred[str] = defer.fail(failure)
            else:
                result = defer.succeed(address)
        else:
            result = super().getHostByName(name, timeout)
        return result.addCallback(self._check, name)

    def _check(self, address: str, name: str) -> str:
        parsed = parse_host(address)
        reason = self.policy.refusal(parsed, name) if parsed is not None else None
        key = _key(name)
        if reason is None:
            self._refused.pop(key, None)
            return address
        if len(self._refused) >= MAX_REMEMBERED:
            self._refused.clear()
        self._refused[key] = reason
        log.warning("%s", reason)
        raise AddressRefused(self._refused[key])

    def refusal(self, name: str) -> str | None:
        """Why the last lookup of ``name`` was refused, or None if it was not."""
        return self._refused.get(_key(name))


def _key(name: str) -> str:
    return name.strip().lower().rstrip(".")
