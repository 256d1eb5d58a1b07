"""Every setting of the crawler, once, with its default and help; and the Scrapy baseline.

Precedence, lowest first: the defaults in :data:`SETTINGS` < the ``[crawler]`` table of
``sources.toml`` < environment variables ``CRAWLER_<NAME>`` < command-line flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from crawler import __version__
from crawler.addresses import NOTHING, AddressPolicy, parse_policy, parse_resolve
from crawler.errors import ConfigError
from crawler.sources import Source
from crawler.urls import MAX_URL_LENGTH

DEFAULT_STORE = Path("data") / "crawl.db"


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default, type and help text."""

    name: str
    default: Any
    convert: Callable[[Any], Any]  # from a string (environment) or a TOML value
    help: str


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _resolve(value: Any) -> tuple[tuple[str, str | None], ...]:
    if isinstance(value, Mapping):  # sources.toml: resolve = { "news.example" = "127.0.0.1" }
        if not all(isinstance(v, str) for v in value.values()):
            raise ValueError('expected host = "address" pairs')
        value = [f"{host}:{address}" for host, address in value.items()]
    return tuple(sorted(parse_resolve(value).items()))


SETTINGS: tuple[Setting, ...] = (
    Setting("store", str(DEFAULT_STORE), str, "Path of the SQLite store; text files go beside it."),
    Setting("timeout", 30.0, float, "Seconds before a download is given up."),
    Setting("max_size", 16 * 1024 * 1024, int, "Largest page, in bytes, after decompression."),
    Setting("obey_robots", True, _flag, "Respect robots.txt."),
    Setting("retries", 2, int, "Retries of a download after a timeout, 5xx or 429."),
    Setting(
        "contact_url",
        "https://github.com/newsroom/newsmonitor-crawler",
        str,
        "URL in the User-Agent where site owners learn who crawls them.",
    ),
    Setting("user_agent", "", str, "Full User-Agent; empty builds one from contact_url."),
    Setting("concurrency", 16, int, "Parallel downloads in total."),
    Setting("concurrency_per_domain", 8, int, "Parallel downloads per domain."),
    Setting("delay", 0.0, float, "Seconds between two downloads from one domain."),
    Setting(
        "allow_private_addresses",
        NOTHING,
        parse_policy,
        "Contact loopback, private, link-local and other non-public addresses: true, or "
        "a comma list of networks (10.0.0.0/8). Off by default (SSRF guard).",
    ),
    Setting(
        "resolve",
        (),
        _resolve,
        "Host name overrides like curl's --resolve: HOST:ADDRESS, comma-separated; "
        "HOST: makes the name fail to resolve.",
    ),
    Setting(
        "extract_timeout",
        20.0,
        float,
        "Seconds one page's extraction may take; then its worker is killed, the page failed.",
    ),
    Setting("extract_max_tasks", 200, int, "Pages an extraction worker handles before renewal."),
)
_BY_NAME = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Config:
    """The effective settings of one command."""

    store: str
    timeout: float
    max_size: int
    obey_robots: bool
    retries: int
    contact_url: str
    user_agent: str
    concurrency: int
    concurrency_per_domain: int
    delay: float
    allow_private_addresses: AddressPolicy = NOTHING
    resolve: tuple[tuple[str, str | None], ...] = ()
    extract_timeout: float = 20.0
    extract_max_tasks: int = 200

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be positive, got {self.timeout}")
        if self.max_size <= 0:
            raise ConfigError(f"max_size must be positive, got {self.max_size}")
        if self.retries < 0:
            raise ConfigError(f"retries must not be negative, got {self.retries}")
        if self.concurrency < 1 or self.concurrency_per_domain < 1:
            raise ConfigError("concurrency must be at least 1")
        if self.delay < 0:
            raise ConfigError(f"delay must not be negative, got {self.delay}")
        if self.extract_timeout <= 0:
            raise ConfigError(f"extract_timeout must be positive, got {self.extract_timeout}")
        if self.extract_max_tasks < 1:
            raise ConfigError("extract_max_tasks must be at least 1")

    @property
    def effective_user_agent(self) -> str:
        """The User-Agent sent with every request: identifying, with a contact URL."""
        return self.user_agent or f"newsmonitor-crawler/{__version__} (+{self.contact_url})"


def file_settings(table: Any, origin: str = "sources.toml") -> dict[str, Any]:
    """Validate the ``[crawler]`` table of a sources file into setting values.

    TOML values keep their types (``timeout = 5``, ``allow_private_addresses = true`` or
    a list of networks, ``resolve = { "news.example" = "127.0.0.1" }``); strings are read
    like environment values. Raises :class:`ConfigError` naming the file and the field.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{origin}: crawler must be a table ([crawler])")
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f'{origin}: [crawler]: field "{key}"'
        setting = _BY_NAME.get(key)
        if setting is None:
            raise ConfigError(f"{where}: unknown setting (known: {', '.join(_BY_NAME)})")
        try:
            values[key] = _from_toml(setting, value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return values


def _from_toml(setting: Setting, value: Any) -> Any:
    if isinstance(value, str):
        return setting.convert(value)
    default = setting.default
    if setting.name in ("allow_private_addresses", "resolve") and isinstance(
        value, bool | list | dict
    ):
        return setting.convert(value)
    if isinstance(default, bool) and isinstance(value, bool):
        return value
    numbers = (int, float)
    if type(default) in numbers and type(value) in numbers:  # bool is no number here
        return type(default)(value)
    raise ValueError(f"bad value {value!r}")


def convert_setting(name: str, value: Any, where: str) -> Any:
    """``value`` converted by the setting ``name``; ConfigError naming ``where`` if bad."""
    try:
        return _BY_NAME[name].convert(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_config(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    file_values: Mapping[str, Any] | None = None,
) -> Config:
    """Build the effective :class:`Config`: defaults < ``file_values`` (the ``[crawler]``
    table of sources.toml, see :func:`file_settings`) < environment < ``overrides``.

    ``overrides`` holds command-line values; ``None`` values are ignored.
    Raises :class:`ConfigError` naming a bad value.
    """
    env = os.environ if environ is None else environ
    values = {setting.name: setting.default for setting in SETTINGS}
    values.update(file_values or {})
    for setting in SETTINGS:
        raw = env.get(f"CRAWLER_{setting.name.upper()}")
        if raw is not None:
            try:
                values[setting.name] = setting.convert(raw)
            except ValueError as exc:
                raise ConfigError(f"CRAWLER_{setting.name.upper()}: {exc}") from None
    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            raise ConfigError(f"unknown setting {name!r}")
        if value is not None:
            values[name] = value
    known = {f.name for f in fields(Config)}
    return Config(**{name: value for name, value in values.items() if name in known})


# Downloader middlewares of every crawl and fetch. The address guard sits after every
# middleware that may answer a request itself, and sees download errors first.
BASE_MIDDLEWARES: dict[str, int | None] = {
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.RobotsTxtMiddleware": 100,
    "crawler.middlewares.AddressGuardMiddleware": 960,
}


def scrapy_settings(config: Config) -> dict[str, Any]:
    """The Scrapy settings of every crawl and fetch: polite, bounded, no remote control."""
    return {
        "BOT_NAME": "newsmonitor-crawler",
        "USER_AGENT": config.effective_user_agent,
        "ROBOTSTXT_OBEY": config.obey_robots,
        # Off: a telnet console and an HTTP endpoint that runs posted Python.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        # http and https only, even if a bug lets another scheme through.
        "DOWNLOAD_HANDLERS": {"file": None, "data": None, "s3": None, "ftp": None},
        "DOWNLOAD_MAXSIZE": config.max_size,
        "DOWNLOAD_WARNSIZE": min(config.max_size, 4 * 1024 * 1024),
        "DOWNLOAD_TIMEOUT": config.timeout,
        "DNS_TIMEOUT": min(config.timeout, 10.0),
        "DOWNLOAD_DELAY": config.delay,
        "REDIRECT_MAX_TIMES": 5,  # HTTP redirects and meta refreshes together
        "URLLENGTH_LIMIT": MAX_URL_LENGTH,
        # The SSRF guard: literal addresses are checked per request (every redirect hop
        # and discovered link), host names by the resolver right before connecting.
        "ADDRESS_POLICY": config.allow_private_addresses,
        "RESOLVE": dict(config.resolve),
        "TWISTED_DNS_RESOLVER": "crawler.resolver.GuardedResolver",
        "DOWNLOADER_MIDDLEWARES": dict(BASE_MIDDLEWARES),
        "RETRY_ENABLED": config.retries > 0,
        "RETRY_TIMES": config.retries,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "CONCURRENT_REQUESTS": config.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrency_per_domain,
        "COOKIES_ENABLED": False,
        "LOG_LEVEL": "ERROR",
        "LOG_ENABLED": True,
        "STATS_DUMP": False,
    }


# What the CrawlerProcess itself reads: logging and the DNS resolver it installs on the
# reactor (the address guard's second check). Scrapy copies the process's settings over
# every crawler's (``CrawlerRunner.create_crawler``: ``crawler.settings.update(...)``), so
# nothing a source sets may be among them: the whole baseline there had replaced each
# source's concurrency, delay and downloader middlewares (retry backoff, circuit breaker).
PROCESS_SETTINGS = (
    "BOT_NAME",
    "LOG_ENABLED",
    "LOG_LEVEL",
    "TWISTED_DNS_RESOLVER",
    "ADDRESS_POLICY",
    "RESOLVE",
    "DNS_TIMEOUT",
)


def process_settings(config: Config) -> dict[str, Any]:
    """The settings of a CrawlerProcess that runs crawlers with :func:`source_settings`."""
    baseline = scrapy_settings(config)
    return {name: baseline[name] for name in PROCESS_SETTINGS if name in baseline}


def source_settings(config: Config, source: Source) -> dict[str, Any]:
    """Scrapy settings for crawling one source: the baseline, the source's politeness,
    AutoThrottle, backoff retries and the extraction and recording pipelines."""
    settings = scrapy_settings(config)
    settings.update(
        {
            "CONCURRENT_REQUESTS_PER_DOMAIN": source.concurrency,
            "DOWNLOAD_DELAY": source.delay,
            "AUTOTHROTTLE_ENABLED": True,
            "AUTOTHROTTLE_START_DELAY": max(source.delay, 0.1),
            "AUTOTHROTTLE_MAX_DELAY": 60.0,
            "AUTOTHROTTLE_TARGET_CONCURRENCY": float(source.concurrency),
            "DEPTH_LIMIT": source.depth + 1 if source.type == "site" else 0,
            "ITEM_PIPELINES": {
                "crawler.pipelines.ExtractionPipeline": 100,
                "crawler.pipelines.RecordPipeline": 200,
            },
            "DOWNLOADER_MIDDLEWARES": {
                **BASE_MIDDLEWARES,
                "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
                "crawler.middlewares.BackoffRetryMiddleware": 550,
                "crawler.middlewares.CircuitBreakerMiddleware": 560,
            },
        }
    )
    return settings
