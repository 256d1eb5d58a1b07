import pytest

from crawler.errors import ConfigError
from crawler.settings import (
    SETTINGS,
    load_config,
    process_settings,
    scrapy_settings,
    source_settings,
)
from crawler.sources import Source


def test_defaults_environment_and_flags_in_order():
    assert load_config(environ={}).timeout == 30.0
    assert load_config(environ={"CRAWLER_TIMEOUT": "5"}).timeout == 5.0
    assert load_config({"timeout": 2.0}, environ={"CRAWLER_TIMEOUT": "5"}).timeout == 2.0
    assert load_config({"timeout": None}, environ={"CRAWLER_TIMEOUT": "5"}).timeout == 5.0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CRAWLER_TIMEOUT": "soon"}, "CRAWLER_TIMEOUT"),
        ({"CRAWLER_OBEY_ROBOTS": "maybe"}, "CRAWLER_OBEY_ROBOTS"),
        ({"CRAWLER_MAX_SIZE": "-1"}, "max_size must be positive"),
    ],
)
def test_bad_values_name_the_setting(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(environ=environ)


def test_every_setting_has_help():
    assert all(setting.help for setting in SETTINGS)


def test_scrapy_baseline_is_closed_and_bounded():
    settings = scrapy_settings(load_config(environ={}))
    assert settings["TELNETCONSOLE_ENABLED"] is False
    assert settings["REMOTE_CONTROL_ENABLED"] is False
    assert settings["DOWNLOAD_HANDLERS"] == {"file": None, "data": None, "s3": None, "ftp": None}
    assert settings["DOWNLOAD_MAXSIZE"] == 16 * 1024 * 1024
    assert settings["ROBOTSTXT_OBEY"] is True
    assert settings["REDIRECT_MAX_TIMES"] == 5
    assert "newsmonitor-crawler" in settings["USER_AGENT"] and "+http" in settings["USER_AGENT"]


def test_the_crawl_process_carries_no_per_source_setting() -> None:
    """Scrapy copies a CrawlerProcess's settings over each crawler's: a per-source value
    among them would replace every source's own (concurrency, delay, middlewares)."""
    config = load_config(environ={})
    source = Source(name="s", type="urls", urls=("https://www.example.example/a",))
    per_source = source_settings(config, source)
    process = process_settings(config)
    assert "TWISTED_DNS_RESOLVER" in process and "ADDRESS_POLICY" in process
    for name in ("DOWNLOADER_MIDDLEWARES", "CONCURRENT_REQUESTS_PER_DOMAIN", "DOWNLOAD_DELAY"):
        assert name in per_source and name not in process
