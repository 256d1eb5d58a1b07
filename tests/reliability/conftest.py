"""Fixtures of the reliability suite (tests/reliability/).

- ``no_stray_processes`` (autouse): every process started through ``proc`` is killed
  when its test ends, pass or fail.
- ``store``: a store path in the test's tmp folder (text files go to ``articles/`` beside it).
- ``newsroom``: a fresh loopback news site (``tests/servers.SiteServer``) whose articles
  are made with ``newsroom_publish(server, count, edition=...)``: each article unique (its
  own canonical URL and a numbered sentence), an RSS feed listing all of them. Publishing
  again with another ``edition`` edits every ``edit_every``-th article's sentence.
- ``feed_sources(path, server, ...)`` writes a sources.toml with one feed source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faults import FaultServer
from newssite import Entry
from proc import no_leftovers
from relsite import publish_articles, write_feed_sources
from servers import SiteServer


@pytest.fixture(autouse=True)
def no_stray_processes() -> Iterator[None]:
    with no_leftovers():
        yield


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "data" / "crawl.db"


@pytest.fixture
def newsroom(tmp_path: Path) -> Iterator[SiteServer]:
    root = tmp_path / "site"
    root.mkdir()
    with SiteServer(root) as server:
        yield server


@pytest.fixture
def news(newsroom: SiteServer) -> SiteServer:
    """The same fresh site as ``newsroom``, under the name the address and hardening tests use."""
    return newsroom


@pytest.fixture
def fault_server(tmp_path: Path) -> Iterator[FaultServer]:
    """A fresh ``faults.FaultServer`` (raw-socket faults besides the site's routes)."""
    with FaultServer(tmp_path / "site") as running:
        yield running


@pytest.fixture
def newsroom_publish() -> Callable[..., list[Entry]]:
    return publish_articles


@pytest.fixture
def feed_sources() -> Callable[..., Path]:
    return write_feed_sources
