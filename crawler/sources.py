"""``sources.toml``: the user's list of sources, validated into :class:`Source` values.

Every error names the file, the source and the field, e.g.
``sources.toml: source "tagesschau": field "url": only http and https URLs are allowed``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from crawler.errors import ConfigError, InvalidURL
from crawler.urls import validate_url

SOURCE_TYPES = ("feed", "sitemap", "site", "urls")
DEFAULT_SOURCES = Path("sources.toml")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"15m"``, ``"6h"``, ``"7d"``, ``"2w"`` as a timedelta. Raises ValueError."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as 15m, 6h or 7d, got {text!r}")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


# Age of an article -> how often it is checked (see crawler.revisits for the reasoning).
DEFAULT_TIERS: tuple[tuple[timedelta, timedelta], ...] = (
    (timedelta(hours=6), timedelta(minutes=15)),
    (timedelta(days=2), timedelta(hours=2)),
    (timedelta(days=7), timedelta(hours=12)),
    (timedelta(days=30), timedelta(days=7)),
)
# A source's crawl schedule when sources.toml gives none, by type.
DEFAULT_EVERY = {
    "feed": timedelta(minutes=15),
    "sitemap": timedelta(hours=1),
    "site": timedelta(days=1),
    "urls": timedelta(hours=1),
}
EVENT_KINDS = ("new", "changed", "title_changed", "removed", "restored")
CHANGE_CLASSES = ("title", "minor", "major")


@dataclass(frozen=True)
class RevisitPolicy:
    """When known articles of a source are fetched again.

    ``interval`` fixes the gap between checks; without it the gap follows the article's
    age (``tiers``) and its history (see :func:`crawler.revisits.next_check`).
    """

    interval: timedelta | None = None
    stop_after: timedelta = timedelta(days=30)
    confirm_removal_after: timedelta = timedelta(hours=1)
    budget: int = 500
    tiers: tuple[tuple[timedelta, timedelta], ...] = DEFAULT_TIERS


@dataclass(frozen=True)
class Schedule:
    """How often the scheduler crawls a source: ``every`` a duration or a ``cron`` line."""

    every: timedelta | None = None
    cron: str | None = None


@dataclass(frozen=True)
class AlertFilter:
    """Which of a source's events are alerted (the store records all of them)."""

    kinds: tuple[str, ...] = EVENT_KINDS
    classes: tuple[str, ...] = CHANGE_CLASSES
    keywords: tuple[str, ...] = ()
    min_words: int = 0


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go: a webhook URL and the Atom feed file (None: beside the store)."""

    webhook: str | None = None
    atom: str | None = None
    timeout: float = 5.0
    retries: int = 3


@dataclass(frozen=True)
class Source:
    """One validated ``[[source]]`` table."""

    name: str
    type: str
    urls: tuple[str, ...]
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    article_pattern: str | None = None
    max_pages: int | None = None
    max_age: timedelta | None = None
    depth: int = 2
    language: str | None = None
    ignore: tuple[str, ...] = ()
    revisit: RevisitPolicy = field(default_factory=RevisitPolicy)
    concurrency: int = 4
    delay: float = 0.0
    enabled: bool = True
    schedule: Schedule = field(default_factory=Schedule)
    alert: AlertFilter = field(default_factory=AlertFilter)
    soft_404: str | None = None  # regex on a 200 page's HTML saying "not found" (a soft 404)

    @property
    def every(self) -> timedelta | None:
        """The crawl interval: the schedule's, else the default of the source's type."""
        if self.schedule.cron:
            return None
        return self.schedule.every or DEFAULT_EVERY[self.type]

    def __post_init__(self) -> None:
        if self.type not in SOURCE_TYPES:
            raise ValueError(f"type must be one of {', '.join(SOURCE_TYPES)}, got {self.type!r}")
        if not self.urls:
            raise ValueError("a source needs url or urls")

    @property
    def domains(self) -> tuple[str, ...]:
        """Host names of the source's start URLs (for keeping a site crawl on site)."""
        from urllib.parse import urlsplit

        return tuple(dict.fromkeys((urlsplit(url).hostname or "") for url in self.urls))


# Each key: (expected types, converter to the Source field value).
_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "text"),
    "type": ((str,), "text"),
    "url": ((str,), "url"),
    "urls": ((list,), "url_list"),
    "allow": ((list,), "regex_list"),
    "deny": ((list,), "regex_list"),
    "article_pattern": ((str,), "regex"),
    "soft_404": ((str,), "regex"),
    "max_pages": ((int,), "positive"),
    "max_age": ((str,), "duration"),
    "depth": ((int,), "non_negative"),
    "language": ((str,), "text"),
    "ignore": ((list,), "regex_list"),
    "revisit": ((dict,), "revisit"),
    "concurrency": ((int,), "positive"),
    "delay": ((int, float), "non_negative"),
    "enabled": ((bool,), "flag"),
    "schedule": ((dict,), "schedule"),
    "alert": ((dict,), "alert"),
}
_REVISIT_DURATIONS = ("interval", "stop_after", "confirm_removal_after")
_CRON = re.compile(r"^\s*\S+(\s+\S+){4}\s*$")


@dataclass(frozen=True)
class SourcesFile:
    """Everything in a sources file: the sources, the alert settings and the crawler
    settings of its ``[crawler]`` table (validated values, see ``crawler.settings``)."""

    sources: list[Source]
    alerts: AlertSettings
    settings: dict[str, Any] = field(default_factory=dict)


def load_sources(path: str | Path) -> list[Source]:
    """Read and validate the sources of a sources file (see :func:`read_sources_file`)."""
    return read_sources_file(path).sources


def read_sources_file(path: str | Path) -> SourcesFile:
    """Read and validate a sources file. Raises :class:`ConfigError` naming file, source, field."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such sources file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    from crawler.settings import file_settings  # settings imports this module

    return SourcesFile(
        parse_sources(raw, str(path)),
        parse_alerts(raw, str(path)),
        file_settings(raw.get("crawler", {}), str(path)),
    )


def parse_alerts(raw: Mapping[str, Any], origin: str = "sources.toml") -> AlertSettings:
    """Validate the ``[alerts]`` table of a parsed sources file."""
    table = raw.get("alerts", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: alerts must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f'{origin}: [alerts]: field "{key}"'
        if key == "webhook" and isinstance(value, str):
            try:
                values[key] = validate_url(value)
            except InvalidURL as exc:
                raise ConfigError(f"{where}: {exc}") from None
        elif key == "atom" and isinstance(value, str) and value.strip():
            values[key] = value
        elif key in ("timeout", "retries") and isinstance(value, int | float) and value >= 0:
            values[key] = int(value) if key == "retries" else float(value)
        elif key in ("webhook", "atom", "timeout", "retries"):
            raise ConfigError(f"{where}: bad value {value!r}")
        else:
            raise ConfigError(f"{where}: unknown field (known: webhook, atom, timeout, retries)")
    return AlertSettings(**values)


def parse_sources(raw: Mapping[str, Any], origin: str = "sources.toml") -> list[Source]:
    """Validate the parsed TOML of a sources file into Source values."""
    unknown = set(raw) - {"source", "alerts", "crawler"}
    if unknown:
        raise ConfigError(f"{origin}: unknown top-level key {sorted(unknown)[0]!r}")
    tables = raw.get("source", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{origin}: sources must be [[source]] tables")
    sources: list[Source] = []
    for index, table in enumerate(tables, 1):
        source = _parse_source(table, origin, index)
        if any(existing.name == source.name for existing in sources):
            raise ConfigError(f'{origin}: source "{source.name}": the name is used twice')
        sources.append(source)
    return sources


def _parse_source(table: Mapping[str, Any], origin: str, index: int) -> Source:
    name = table.get("name")
    label = f'source "{name}"' if isinstance(name, str) else f"source #{index}"

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f'{origin}: {label}: field "{key}": {message}')

    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise fail(key, f"unknown field (known: {', '.join(_KEYS)})")
        types, kind = _KEYS[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise fail(key, f"expected {expected}, got {type(value).__name__} {value!r}")
        try:
            values[key] = _convert(kind, value)
        except (ValueError, InvalidURL, re.error) as exc:
            raise fail(key, str(exc)) from None
    for required in ("name", "type"):
        if required not in values:
            raise fail(required, "missing")
    if ("url" in values) == ("urls" in values):
        raise fail("url", "give exactly one of url and urls")
    if values["type"] not in SOURCE_TYPES:
        raise fail("type", f"must be one of {', '.join(SOURCE_TYPES)}, got {values['type']!r}")
    values["urls"] = (values.pop("url"),) if "url" in values else values["urls"]
    if values["type"] != "urls" and len(values["urls"]) != 1:
        raise fail("urls", f"a {values['type']} source has one start url")
    return Source(**values)


def _convert(kind: str, value: Any) -> Any:
    if kind in ("text", "flag"):
        if kind == "text" and not value.strip():
            raise ValueError("must not be empty")
        return value
    if kind == "url":
        return validate_url(value)
    if kind == "url_list":
        if not value or not all(isinstance(item, str) for item in value):
            raise ValueError("expected a non-empty list of URLs")
        return tuple(validate_url(item) for item in value)
    if kind == "regex":
        _compile(value)
        return value
    if kind == "regex_list":
        if not all(isinstance(item, str) for item in value):
            raise ValueError("expected a list of regular expressions")
        for item in value:
            _compile(item)
        return tuple(value)
    if kind == "duration":
        return parse_duration(value)
    if kind == "positive" and value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    if kind == "non_negative" and value < 0:
        raise ValueError(f"must not be negative, got {value}")
    if kind == "revisit":
        return _revisit(value)
    if kind == "schedule":
        return _schedule(value)
    if kind == "alert":
        return _alert(value)
    return value


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"bad regular expression {pattern!r}: {exc}") from None


def _revisit(table: Mapping[str, Any]) -> RevisitPolicy:
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in _REVISIT_DURATIONS:
            values[key] = _duration_value(f"revisit.{key}", value)
        elif key == "budget":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"revisit.budget: expected a positive integer, got {value!r}")
            values[key] = value
        elif key == "tiers":
            values[key] = _tiers(value)
        else:
            raise ValueError(f"unknown revisit key {key!r}")
    return RevisitPolicy(**values)


def _duration_value(name: str, value: Any) -> timedelta:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a duration string, got {value!r}")
    return parse_duration(value)


def _tiers(value: Any) -> tuple[tuple[timedelta, timedelta], ...]:
    """``[["6h", "15m"], ["2d", "2h"]]``: up to an age, check this often."""
    if not isinstance(value, list) or not value:
        raise ValueError("revisit.tiers: expected a list of [age, interval] pairs")
    tiers = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise ValueError(f"revisit.tiers: expected [age, interval], got {pair!r}")
        tiers.append((_duration_value("tier age", pair[0]), _duration_value("tier", pair[1])))
    if [age for age, _ in tiers] != sorted(age for age, _ in tiers):
        raise ValueError("revisit.tiers: ages must increase")
    return tuple(tiers)


def _schedule(table: Mapping[str, Any]) -> Schedule:
    if set(table) - {"every", "cron"} or len(table) != 1:
        raise ValueError('give one of { every = "15m" } or { cron = "*/15 * * * *" }')
    if "every" in table:
        every = _duration_value("schedule.every", table["every"])
        if every <= timedelta(0):
            raise ValueError("schedule.every must be positive")
        return Schedule(every=every)
    cron = table["cron"]
    if not isinstance(cron, str) or not _CRON.match(cron):
        raise ValueError(f"schedule.cron: expected five crontab fields, got {cron!r}")
    return Schedule(cron=cron.strip())


def _alert(table: Mapping[str, Any]) -> AlertFilter:
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key in ("kinds", "classes", "keywords"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"alert.{key}: expected a list of strings")
            allowed = {"kinds": EVENT_KINDS, "classes": CHANGE_CLASSES}.get(key)
            bad = [v for v in value if allowed and v not in allowed]
            if bad:
                raise ValueError(
                    f"alert.{key}: {bad[0]!r} is not one of {', '.join(allowed or ())}"
                )
            values[key] = tuple(value)
        elif key == "min_words":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"alert.min_words: expected a non-negative integer, got {value!r}")
            values[key] = value
        else:
            raise ValueError(f"unknown alert key {key!r}")
    return AlertFilter(**values)
