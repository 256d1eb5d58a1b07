"""C1-C3: bad sources.toml, invalid URLs and non-http schemes are one clear error line,
before the store is touched; the [crawler] table and its precedence."""

from __future__ import annotations

import pytest
from servers import run_cli

from crawler.addresses import EVERYTHING, parse_policy
from crawler.errors import ConfigError, InvalidURL
from crawler.settings import file_settings, load_config
from crawler.urls import MAX_URL_LENGTH, validate_url

FEED = '[[source]]\nname = "a"\ntype = "feed"\nurl = "https://news.example/feed.xml"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[source]\nname = "a"', "line 1"),  # TOML syntax error: file, line and column
        (FEED + 'max_pages = "soon"\n', 'source "a": field "max_pages": expected int'),
        (FEED + "colour = 1\n", 'source "a": field "colour": unknown field'),
        (FEED + FEED, 'source "a": the name is used twice'),
        ("", "no enabled sources"),
        (FEED.replace("https://news.example/feed.xml", "htp://x"), "only http and https"),
        (FEED + "[crawler]\nallow_private_addresses = 5\n", '[crawler]: field "allow_private_'),
        (FEED + '[crawler]\nallow_private_addresses = ["lan"]\n', "'lan'"),
        (FEED + '[crawler]\nresolve = ["news.example"]\n', "HOST:ADDRESS"),
        (FEED + "[crawler]\ntimeout = true\n", '[crawler]: field "timeout": bad value'),
        (FEED + "[crawler]\nwarp = 9\n", '[crawler]: field "warp": unknown setting'),
        (FEED + "[crawler]\ntimeout = -1\n", "timeout must be positive"),
        ("crawler = 3\n" + FEED, "crawler must be a table"),
    ],
)
def test_a_bad_sources_file_is_one_line_and_leaves_the_store_alone(tmp_path, text, message):
    sources = tmp_path / "sources.toml"
    sources.write_text(text, "utf-8")
    store = tmp_path / "crawl.db"
    done = run_cli("crawl", "--sources", sources, store=store)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not store.exists()  # checked before anything is opened


def test_a_non_utf8_sources_file(tmp_path):
    sources = tmp_path / "sources.toml"
    sources.write_bytes(FEED.encode("utf-8") + b'language = "\xe4"\n')
    done = run_cli("crawl", "--sources", sources, store=tmp_path / "crawl.db")
    assert done.returncode == 2 and "not UTF-8" in done.stderr


def test_crawler_table_precedence_file_environment_flag():
    file_values = file_settings(
        {"timeout": 5, "allow_private_addresses": ["10.0.0.0/8"], "resolve": {"a.example": ""}}
    )
    config = load_config(environ={}, file_values=file_values)
    assert config.timeout == 5.0
    assert config.allow_private_addresses == parse_policy("10.0.0.0/8")
    assert dict(config.resolve) == {"a.example": None}
    env = {"CRAWLER_TIMEOUT": "7", "CRAWLER_ALLOW_PRIVATE_ADDRESSES": "127.0.0.0/8"}
    config = load_config(environ=env, file_values=file_values)
    assert (config.timeout, config.allow_private_addresses.describe()) == (7.0, "127.0.0.0/8")
    config = load_config(
        {"allow_private_addresses": EVERYTHING}, environ=env, file_values=file_values
    )
    assert config.allow_private_addresses == EVERYTHING
    assert load_config(environ={}).allow_private_addresses.describe() == "none"


def test_bad_crawler_table_values_name_the_file_and_field():
    with pytest.raises(ConfigError, match=r'my\.toml: \[crawler\]: field "resolve"'):
        file_settings({"resolve": {"a.example": 5}}, "my.toml")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("htp://x", "only http and https"),
        ("http://", "no host"),
        ("http://exa mple.com", "whitespace"),
        ("http://[::1", "malformed"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com:0/", "port 0"),
        ("https://news.example/" + "a" * MAX_URL_LENGTH, "longer than"),
        ("", "empty"),
        ("file:///etc/passwd", "file:"),
        ("gopher://127.0.0.1:6379/_INFO", "gopher:"),
        ("ftp://ftp.example/x", "ftp:"),
        ("data:,x", "data:"),
        ("s3://bucket/key", "s3:"),
        ("javascript:alert(1)", "javascript:"),
        ("//news.example/x", "no scheme"),
    ],
)
def test_invalid_urls_are_refused_with_the_reason(url, message):
    with pytest.raises(InvalidURL, match=message):
        validate_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("  https://news.example/a\n", "https://news.example/a"),  # surrounding whitespace
        ("https://bücher.example/a", "https://bücher.example/a"),  # IDN: kept, resolved later
        ("https://xn--bcher-kva.example/a", "https://xn--bcher-kva.example/a"),
        ("HTTP://News.Example/a", "HTTP://News.Example/a"),
    ],
)
def test_acceptable_urls(url, expected):
    assert validate_url(url) == expected


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "htp://x", "http://[::1"]
)
def test_fetch_refuses_bad_urls_with_exit_2(tmp_path, url):
    done = run_cli("fetch", url, store=tmp_path / "crawl.db")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "crawl.db").exists()
