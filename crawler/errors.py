"""The exceptions this package raises.

    CrawlerError                  base: the CLI turns any of these into one line on stderr
    ├── ConfigError               bad sources.toml, bad setting, bad command-line value
    │   └── InvalidURL            not an absolute http(s) URL
    ├── FetchError                the page could not be fetched (carries an outcome code)
    ├── ExtractionError           the page was fetched but holds no article text
    └── StoreError                the store is missing, corrupt, newer than us, or locked

Expected failures during crawls are recorded as rows (status, reason); these exceptions
are for callers that asked for one thing and did not get it.
"""

from __future__ import annotations


class CrawlerError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(CrawlerError):
    """A configuration file, setting or command-line value is invalid."""

    exit_code = 2


class InvalidURL(ConfigError):
    """A URL is malformed or uses a scheme other than http or https."""


class FetchError(CrawlerError):
    """A page could not be fetched; ``outcome`` names why (``timeout``, ``http_404``, …)."""

    def __init__(self, message: str, outcome: str = "error") -> None:
        super().__init__(message)
        self.outcome = outcome


class ExtractionError(CrawlerError):
    """A fetched page holds no article text; ``reason`` names why (``empty``, ``not_html``…)."""

    def __init__(self, message: str, reason: str = "no_text") -> None:
        super().__init__(message)
        self.reason = reason


class StoreError(CrawlerError):
    """The store cannot be opened or written safely."""
