import pytest

from crawler.health import blocked_reason, collapse_problem, text_problem

ARTICLE = " ".join(["Der Stadtrat hat am Dienstag den Haushalt beschlossen."] * 12)


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (
            "<html><head><title>Just a moment...</title></head><body>Checking</body></html>",
            "bot challenge",
        ),
        ('<div id="cf-browser-verification">x</div>', "bot challenge"),
        ("<script>window._cf_chl_opt={}</script>", "bot challenge"),
        ("<noscript>Please enable JavaScript and cookies to continue</noscript>", "bot challenge"),
        ("<title>Zustimmung zu Cookies | Zeitung</title>", "consent wall"),
        ('<form action="https://consent.google.com/save">', "consent wall"),
        ('<div id="sp_message_container_123">', "consent wall"),
        ("<p>Jetzt weiterlesen mit Z+ für nur 1 Euro</p>", "paywall"),
        (f"<html><body><article><p>{ARTICLE}</p></article></body></html>", None),
    ],
)
def test_blocked_pages(html, reason):
    assert blocked_reason(html) == reason


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (ARTICLE, None),
        ("Kurz.", "too short (1 words)"),
        ("Jetzt weiterlesen mit Z+ für nur 1 Euro.", "paywall stub"),
    ],
)
def test_text_problems(body, expected):
    problem = text_problem(body)
    assert (problem is None) if expected is None else problem.startswith(expected)


@pytest.mark.parametrize(
    ("body", "previous", "expected"),
    [
        (ARTICLE, 2000, "text collapsed"),
        ("Jetzt weiterlesen mit Z+ für nur 1 Euro.", 300, "paywall stub"),
        (ARTICLE, 300, None),
        ("Kurz und knapp.", 10, None),  # short articles may stay short
    ],
)
def test_collapse(body, previous, expected):
    problem = collapse_problem(body, previous)
    assert (problem is None) if expected is None else problem.startswith(expected)
