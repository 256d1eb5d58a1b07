"""Is a fetched page the article, or something standing in its way? Pure checks.

A bot challenge, a consent wall or a paywall stub comes back with HTTP 200 and some
text; recorded as a version it would look like the article was rewritten, and the next
good fetch like it was restored. These checks turn such pages into failed checks with
a reason, never versions or removals.
"""

from __future__ import annotations

import re

# Markers of pages that are not the article, matched against the start of the raw HTML.
_BLOCKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "bot challenge",
        re.compile(
            r"<title>\s*(Just a moment\.\.\.|Attention Required!|Access denied|"
            r"Checking your browser|DDoS-Guard|Bitte warten)|cf-browser-verification|"
            r"challenge-platform|cf_chl_opt|_Incapsula_Resource|px-captcha|"
            r"g-recaptcha|h-captcha|Please enable JavaScript and cookies to continue|"
            r"Enable JavaScript and cookies to continue",
            re.IGNORECASE,
        ),
    ),
    (
        "consent wall",
        re.compile(
            r"<title>[^<]*(Zustimmung|Einwilligung|Cookie-Einstellungen|Privacy settings|"
            r"Before you continue)[^<]*</title>|consent\.(google|yahoo)\.com/|"
            r"id=[\"']?(sp_message_container|cmp-wall|consent-wall)",
            re.IGNORECASE,
        ),
    ),
)
# Markers in the extracted text of a paywall stub.
_PAYWALL_TEXT = re.compile(
    r"(Jetzt (weiter)?lesen mit|Lesen Sie (jetzt )?weiter mit|Weiterlesen mit \w+|"
    r"Dieser Artikel ist (nur )?für Abonnenten|exklusiv für Abonnenten|"
    r"Subscribe to (continue|read)|This (article|content) is for subscribers)",
    re.IGNORECASE,
)
MIN_WORDS = 40
COLLAPSE_RATIO = 0.2


def blocked_reason(html: str) -> str | None:
    """'bot challenge', 'consent wall' or 'paywall' when a page without usable text is one.

    Call it only for pages whose text is missing or too short: real articles often carry
    a captcha for comments or a subscription offer, which says nothing about the page.
    """
    head = html[:100_000]
    for reason, pattern in _BLOCKERS:
        if pattern.search(head):
            return reason
    return "paywall" if _PAYWALL_TEXT.search(head) else None


def text_problem(body: str) -> str | None:
    """Why an extracted body is not a usable article text (too few words, a paywall
    stub), or None when it is."""
    words = len(body.split())
    if words >= MIN_WORDS:
        return None
    if _PAYWALL_TEXT.search(body):
        return f"paywall stub ({words} words)"
    return f"too short ({words} words)"


def collapse_problem(body: str, previous_words: int) -> str | None:
    """Why a new text is not a new version: it collapsed to a fraction of the stored
    one (``previous_words``), as after a redesign or a soft block. None when it did not."""
    words = len(body.split())
    if previous_words and words < COLLAPSE_RATIO * previous_words:
        stub = "paywall stub" if _PAYWALL_TEXT.search(body) else "text collapsed"
        return f"{stub}: {words} words, the stored version has {previous_words}"
    return None


def degradation(
    failed_recent: int, pages_recent: int, failed_before: int, pages_before: int
) -> str | None:
    """A warning when a source's share of pages without usable text jumped, as after a
    redesign: at least half of the last day's pages (5 or more) and 30 points above the
    week before."""
    if pages_recent < 5:
        return None
    recent = failed_recent / pages_recent
    before = failed_before / pages_before if pages_before else 0.0
    if recent >= 0.5 and recent - before >= 0.3:
        return (
            f"extraction degraded: {recent:.0%} of the last day's pages had no usable text "
            f"(the week before: {before:.0%}); has the site changed its layout?"
        )
    return None
