"""URL checks and canonical forms: pure functions, no network."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawler.errors import InvalidURL

ALLOWED_SCHEMES = frozenset({"http", "https"})
MAX_URL_LENGTH = 2083  # Scrapy's URLLENGTH_LIMIT; longer URLs are refused, not dropped later.

# Query parameters that only track the reader, never select content.
_TRACKING_PARAM = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|igshid|yclid|"
    r"_ga|_gl|ref_src|ref_url|wt_mc|wt\.mc_id|ito|ocid|cmpid|xtor|at_medium|at_campaign|"
    r"at_custom\d*|at_brand|at_platform|at_position|at_format|icid|ncid|sr_share|smid|"
    r"share|ns_campaign|ns_mchannel|ns_source|ns_linkname|ns_fee|s_cid|taid)$",
    re.IGNORECASE,
)


def validate_url(url: str) -> str:
    """Return ``url`` stripped of surrounding whitespace if it is an absolute http(s) URL.

    Raises :class:`InvalidURL` naming the problem otherwise.
    """
    candidate = url.strip()
    if not candidate:
        raise InvalidURL("empty URL")
    if len(candidate) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in candidate):
        raise InvalidURL(f"URL contains whitespace: {candidate!r}")
    try:
        parts = urlsplit(candidate)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise InvalidURL(f"malformed URL {candidate!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}:" if scheme else "no scheme"
        raise InvalidURL(f"only http and https URLs are allowed, got {shown} in {candidate!r}")
    if not parts.hostname:
        raise InvalidURL(f"URL has no host: {candidate!r}")
    if port == 0:
        raise InvalidURL(f"URL has port 0: {candidate!r}")
    return candidate


def canonicalize_url(url: str) -> str:
    """Return a canonical form of ``url`` for identifying an article.

    Lower-cases scheme and host, drops the fragment, default ports and tracking
    parameters (utm_*, fbclid, …) and sorts the remaining query parameters.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port and not (
        (scheme == "http" and parts.port == 80) or (scheme == "https" and parts.port == 443)
    ):
        host = f"{host}:{parts.port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _TRACKING_PARAM.match(key)
    ]
    query.sort()
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query, doseq=True), ""))
