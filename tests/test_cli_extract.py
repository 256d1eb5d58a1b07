"""``crawler extract`` and the help texts, through the console script in a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import PDF_BYTES, SITES_DIR

from crawler.extraction import extract

Cli = Callable[..., subprocess.CompletedProcess[str]]

PAGE = SITES_DIR / "news" / "articles" / "hochwasserschutz-donau.html"
TITLE = "Hochwasserschutz: Regensburg plant neue Deiche an der Donau"
URL = "https://www.donau-kurier.example/regionales/hochwasserschutz-donau.html"


def assert_error(result: subprocess.CompletedProcess[str], exit_code: int) -> str:
    """Check a failed run: the exit code, no output, one ``error:`` line; return that line."""
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def test_extract_file_prints_the_article_text(cli: Cli) -> None:
    result = cli("extract", PAGE)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == extract(PAGE.read_bytes()).text + "\n"
    lines = result.stdout.splitlines()
    assert lines[0] == TITLE
    assert "" not in lines
    assert "Anzeige" not in result.stdout and "Mehr zum Thema" not in result.stdout
    assert "Überschwemmungsgebiet" in result.stdout


def test_extract_reads_stdin(cli: Cli) -> None:
    result = cli("extract", "-", input=PAGE.read_text(encoding="utf-8"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == cli("extract", PAGE).stdout


def test_extract_json_with_url(cli: Cli) -> None:
    result = cli("extract", "--json", "--url", URL, PAGE)

    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["title"] == TITLE
    assert document["url"] == URL
    assert document["author"] == "Katharina Weißbäcker"
    assert document["date"] == "2024-11-24"
    assert document["site_name"] == "Donau-Kurier"
    assert document["text"] == f"{TITLE}\n{document['body']}"
    assert "outcome" not in document or document["outcome"] is None


def test_extract_resolves_a_relative_canonical_link(cli: Cli) -> None:
    """``<link rel="canonical" href="/articles/...">`` is relative to the page's URL."""
    document = json.loads(cli("extract", "--json", "--url", URL, PAGE).stdout)

    expected = "https://www.donau-kurier.example/articles/hochwasserschutz-donau.html"
    assert document["canonical_url"] == expected


@pytest.mark.parametrize(
    ("name", "content", "word"),
    [("brochure.pdf", PDF_BYTES, "pdf"), ("empty.html", b"", "empty")],
)
def test_extract_unusable_file_is_an_error(
    cli: Cli, tmp_path: Path, name: str, content: bytes, word: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    assert word in assert_error(cli("extract", path), 1).lower()


def test_extract_missing_file_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "gibt-es-nicht.html"

    assert "gibt-es-nicht.html" in assert_error(cli("extract", missing), 2)


def test_extract_rejects_a_bad_url(cli: Cli) -> None:
    assert_error(cli("extract", "--url", "ftp://127.0.0.1/x", PAGE), 2)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["fetch", "--help"], ["extract", "--help"]],
    ids=["crawler", "fetch", "extract"],
)
def test_help(cli: Cli, args: list[str]) -> None:
    result = cli(*args)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: crawler")
    assert "Traceback" not in result.stderr
