from datetime import timedelta

import pytest

from crawler.errors import ConfigError
from crawler.sources import load_sources, parse_duration

GOOD = """
[[source]]
name = "tagesschau"
type = "feed"
url = "https://www.tagesschau.example/index~rss2.xml"
max_age = "7d"
ignore = ["^Stand: "]
revisit = { interval = "1h", stop_after = "14d" }

[[source]]
name = "liste"
type = "urls"
urls = ["https://a.example/1", "https://a.example/2"]
enabled = false
delay = 1.5
"""


def write(tmp_path, text, name="sources.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads(tmp_path):
    feed, urls = load_sources(write(tmp_path, GOOD))
    assert feed.name == "tagesschau" and feed.type == "feed"
    assert feed.urls == ("https://www.tagesschau.example/index~rss2.xml",)
    assert feed.max_age == timedelta(days=7)
    assert feed.revisit.interval == timedelta(hours=1)
    assert feed.revisit.stop_after == timedelta(days=14)
    assert feed.ignore == ("^Stand: ",)
    assert urls.urls == ("https://a.example/1", "https://a.example/2")
    assert urls.enabled is False and urls.delay == 1.5


BASE = '[[source]]\nname = "s"\ntype = "feed"\nurl = "https://a.example/feed"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "colour = 'blue'\n", 'source "s": field "colour": unknown field'),
        (BASE + "max_pages = 'many'\n", 'field "max_pages": expected int'),
        (BASE + "max_pages = 0\n", 'field "max_pages": must be at least 1'),
        (BASE + "enabled = 'yes'\n", 'field "enabled": expected bool'),
        (BASE + "max_age = 'soon'\n", 'field "max_age": expected a duration'),
        (BASE + "allow = ['([a-z']\n", 'field "allow": bad regular expression'),
        (BASE + "article_pattern = '(('\n", 'field "article_pattern": bad regular expression'),
        (BASE + "revisit = { every = '1h' }\n", 'field "revisit": unknown revisit key'),
        (BASE.replace("https://a.example/feed", "file:///etc/passwd"), 'field "url": only http'),
        (BASE.replace("https://a.example/feed", "ftp://a.example/x"), 'field "url": only http'),
        (BASE.replace('type = "feed"', 'type = "podcast"'), 'field "type": must be one of'),
        (BASE.replace('url = "https://a.example/feed"\n', ""), 'field "url": give exactly one'),
        (BASE + BASE, 'source "s": the name is used twice'),
        (
            "[[source]]\ntype = 'feed'\nurl = 'https://a.example/'\n",
            'source #1: field "name": missing',
        ),
        ("title = 'x'\n", "unknown top-level key 'title'"),
        ("[[source]\nname=", "sources.toml: "),
    ],
)
def test_errors_name_the_file_source_and_field(tmp_path, text, message):
    with pytest.raises(ConfigError, match=None) as caught:
        load_sources(write(tmp_path, text))
    assert str(caught.value).startswith(str(tmp_path / "sources.toml") + ":")
    assert message.replace("sources.toml: ", "") in str(caught.value)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(ConfigError, match="no such sources file"):
        load_sources(tmp_path / "absent.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes('[[source]]\nname = "Zürich"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_sources(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("6h", timedelta(hours=6)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0s", timedelta(0)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "5", "-1h", "1y", "h"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_the_shipped_example_is_valid():
    from pathlib import Path

    sources = load_sources(Path(__file__).resolve().parent.parent / "sources.example.toml")
    assert {source.type for source in sources} >= {"feed", "sitemap"}
    assert len(sources) >= 4
