import pytest

from crawler.errors import InvalidURL
from crawler.urls import canonicalize_url, validate_url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "https://www.tagesschau.example/inland/artikel-100.html",
        "  http://127.0.0.1:8080/a?b=c  ",
        "http://[::1]:8000/x",
    ],
)
def test_valid_urls_pass(url):
    assert validate_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty URL"),
        ("file:///etc/passwd", "only http and https"),
        ("ftp://127.0.0.1/x", "only http and https"),
        ("data:,hello", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("gopher://127.0.0.1:6379/_INFO", "only http and https"),
        ("htp://x", "only http and https"),
        ("example.com/artikel", "no scheme"),
        ("http://", "no host"),
        ("http://exa mple.com", "whitespace"),
        ("http://[::1", "malformed"),
        ("http://example.com:99999/", "malformed"),
        ("http://example.com/" + "a" * 3000, "longer than"),
    ],
)
def test_invalid_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(InvalidURL, match=message):
        validate_url(url)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#kommentare", "https://example.com/a"),
        ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
        ("https://example.com/a?fbclid=abc&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?b=2&a=1&gclid=z", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?WT.mc_id=x&page=2", "https://example.com/a?page=2"),
        ("http://[::1]:8000/x?utm_campaign=q", "http://[::1]:8000/x"),
    ],
)
def test_canonical_urls_drop_tracking_and_noise(url, canonical):
    assert canonicalize_url(url) == canonical
