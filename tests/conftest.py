"""Shared fixtures: a loopback test web server and a CLI runner with a clean environment."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import SiteServer, run_cli, serve_copy


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteServer]:
    """One server for the session over a copy of tests/sites/news/; do not edit its files."""
    with serve_copy("news", tmp_path_factory.mktemp("site-shared")) as running:
        yield running


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SiteServer]:
    """A fresh server over this test's own copy of tests/sites/news/: edit pages freely."""
    with serve_copy("news", tmp_path / "site") as running:
        yield running


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``cli(*args, store=None, input=None, timeout=60)`` runs the ``crawler`` console script
    in a subprocess with HOME and the working directory under tmp_path and no proxies."""

    def invoke(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("home", tmp_path / "home")
        return run_cli(*args, **kwargs)  # type: ignore[arg-type]

    return invoke


# --- Extraction goldens (tests/test_extraction.py) -------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/pages/*.expected.txt from the current extraction output instead "
        "of comparing; review the change with `git diff tests/pages/`",
    )


@pytest.fixture
def regen_goldens(request: pytest.FixtureRequest) -> bool:
    """True when pytest runs with --regen-goldens."""
    return bool(request.config.getoption("--regen-goldens"))
