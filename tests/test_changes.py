"""Tests for crawler.changes: normalisation, fingerprints, diffs, classes, comparisons."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import replace

import pytest

from crawler.changes import (
    Change,
    Diff,
    ParagraphChange,
    classify,
    compare,
    compile_ignore_patterns,
    diff_texts,
    fingerprint,
    normalize_text,
    word_diff,
)
from crawler.errors import ConfigError

# A real German article in the text format: the title, then one paragraph per line.
SEED_LINES = (
    "Historisches Treffen: Trump und NATO-Chef Rutte diskutieren Sicherheitsfragen",
    (
        "In einer Zeit wachsender geopolitischer Spannungen kam es zu einem mit Spannung "
        "erwarteten Treffen zwischen dem designierten US-Präsidenten Donald Trump und dem "
        "neuen NATO-Generalsekretär Mark Rutte. Das Gespräch, das in Palm Beach, Florida, "
        "stattfand, könnte richtungsweisend für die künftige transatlantische "
        "Sicherheitspolitik sein."
    ),
    "Brisante Themen auf der Agenda",
    (
        'Bei dem Treffen seien "globale Sicherheitsprobleme" erörtert worden, wie die '
        "NATO-Sprecherin Farah Dakhlallah in Brüssel mitteilte. Die Zurückhaltung bei der "
        "Kommunikation der Gesprächsinhalte dürfte kein Zufall sein - zu groß scheinen die "
        "Differenzen in zentralen sicherheitspolitischen Fragen."
    ),
    "Unterschiedliche Positionen zur Ukraine-Unterstützung",
    (
        "Besonders deutlich werden die gegensätzlichen Ansichten in der Ukraine-Politik. "
        "Während Rutte sich vehement für eine fortgesetzte Unterstützung der Ukraine einsetzt, "
        "steht Trump den milliardenschweren Hilfspaketen äußerst kritisch gegenüber. Der "
        "designierte US-Präsident hat wiederholt betont, den Konflikt schnell beenden zu "
        "wollen - auch wenn dies möglicherweise territoriale Zugeständnisse an Russland "
        "bedeuten könnte."
    ),
    "Spannungsgeladene NATO-Beziehungen",
    (
        "Die erste Amtszeit Trumps war geprägt von erheblichen Spannungen mit der NATO. Seine "
        "deutliche Kritik an den seiner Meinung nach zu geringen Verteidigungsausgaben der "
        "europäischen Partner führte zu diplomatischen Verstimmungen. Besonders alarmierend "
        "für viele Bündnispartner: Trump hatte im Frühjahr erklärt, säumigen NATO-Mitgliedern "
        "im Angriffsfall nicht beistehen zu wollen."
    ),
    (
        'Die Aussage Trumps, er würde Russland sogar "ermutigen zu tun, was immer sie wollen", '
        "sorgte für erhebliche Verunsicherung im Bündnis."
    ),
    'Der "Trump-Flüsterer" am Werk',
    (
        "Rutte, der erst seit Oktober das Amt des NATO-Generalsekretärs bekleidet, gilt als "
        "geschickter Diplomat im Umgang mit Trump. Nicht umsonst erwarb er sich in seiner Zeit "
        'als niederländischer Ministerpräsident den Spitznamen "Trump-Flüsterer". Diese '
        "besondere Beziehung könnte sich als wertvoll erweisen - 2019 bezeichnete Trump Rutte "
        "sogar als seinen Freund."
    ),
    "Zukunftsaussichten für die transatlantische Partnerschaft",
    (
        "Die kommenden Monate dürften zeigen, ob Rutte seine diplomatischen Fähigkeiten "
        "erfolgreich einsetzen kann, um die transatlantische Partnerschaft zu stärken. "
        "Angesichts der zunehmenden globalen Herausforderungen und der sich verschärfenden "
        "geopolitischen Lage wäre eine stabile Zusammenarbeit zwischen den USA und der NATO "
        "wichtiger denn je."
    ),
    (
        "Die Entwicklungen verdeutlichen einmal mehr, wie fragil das internationale "
        "Sicherheitsgefüge geworden ist. Die zunehmende Unsicherheit über die Verlässlichkeit "
        "traditioneller Bündnisstrukturen könnte weitreichende Folgen für die globale "
        "Stabilität haben."
    ),
    "- Themen:",
    "- #Wahlen",
)
SEED = "\n".join(SEED_LINES)
UPDATED = "Aktualisiert am 24.11.2024, 15:02 Uhr"
RUTTE_SENTENCE = (
    "Diese besondere Beziehung könnte sich als wertvoll erweisen - "
    "2019 bezeichnete Trump Rutte sogar als seinen Freund."
)
NEW_PARAGRAPH = "Ein Sprecher des Weißen Hauses wollte sich am Abend nicht zu dem Treffen äußern."


def edited(*, title: str | None = None, **changes: str | None) -> str:
    """The seed with line ``_N`` replaced (``None`` drops it) and optionally a new title."""
    lines: list[str | None] = list(SEED_LINES)
    if title is not None:
        lines[0] = title
    for key, value in changes.items():
        lines[int(key.lstrip("_"))] = value
    return "\n".join(line for line in lines if line is not None)


def inserted(index: int, line: str) -> str:
    lines = list(SEED_LINES)
    lines.insert(index, line)
    return "\n".join(lines)


# --- normalize_text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "patterns", "expected"),
    [
        pytest.param("Mu\u0308nchen, Gru\u0308\u00dfe", (), "München, Grüße", id="nfd-umlauts"),
        pytest.param("Donald\u00a0Trump", (), "Donald Trump", id="nbsp"),
        pytest.param(
            "15:02\u202fUhr\u2009am\u3000Abend", (), "15:02 Uhr am Abend", id="thin-spaces"
        ),
        pytest.param("NATO\u200b-Chef", (), "NATO-Chef", id="zero-width-space"),
        pytest.param("\ufeffTitel\nText", (), "Titel\nText", id="bom"),
        pytest.param("Wort\u2060verbinder", (), "Wortverbinder", id="word-joiner"),
        pytest.param("Sicher\u00adheits\u00adpolitik", (), "Sicherheitspolitik", id="soft-hyphen"),
        pytest.param(
            "Titel\r\nAbsatz\r\nNoch einer\r\n", (), "Titel\nAbsatz\nNoch einer", id="crlf"
        ),
        pytest.param("Titel\rAbsatz", (), "Titel\nAbsatz", id="cr"),
        pytest.param("Titel\u2028Absatz", (), "Titel\nAbsatz", id="line-separator"),
        pytest.param("  Titel \t\nAbsatz   eins  ", (), "Titel\nAbsatz eins", id="spaces-tabs"),
        pytest.param("Titel\n\n \n\u00a0\n\u200b\nAbsatz", (), "Titel\nAbsatz", id="blank-lines"),
        pytest.param(
            '„Trump-Flüsterer“ – "ermutigen"',
            (),
            '„Trump-Flüsterer“ – "ermutigen"',
            id="quotes-are-content",
        ),
        pytest.param("Familie 👨\u200d👩\u200d👧", (), "Familie 👨\u200d👩\u200d👧", id="zwj-kept"),
        pytest.param(
            f"Titel\n{UPDATED}\nAbsatz", ("^Aktualisiert am",), "Titel\nAbsatz", id="ignore-line"
        ),
        pytest.param(
            f"Titel\n  {UPDATED.upper()}\nAbsatz",
            ("^Aktualisiert am",),
            "Titel\nAbsatz",
            id="ignore-case-insensitive-after-strip",
        ),
        pytest.param(
            "Titel\nZuletzt aktualisiert am Montag",
            ("^Aktualisiert am",),
            "Titel\nZuletzt aktualisiert am Montag",
            id="ignore-anchored-keeps",
        ),
        pytest.param(
            "Titel\nFoto: dpa\nAbsatz\nLesezeit: 3 Min.",
            (r"^Foto:", r"^Lesezeit"),
            "Titel\nAbsatz",
            id="ignore-several",
        ),
        pytest.param(
            "Titel\nAktualisiert\u00a0am 1.1.",
            (r"^Aktualisiert am",),
            "Titel",
            id="ignore-matches-normalised-line",
        ),
        pytest.param("", (), "", id="empty"),
    ],
)
def test_normalize_text(raw: str, patterns: tuple[str, ...], expected: str) -> None:
    assert normalize_text(raw, patterns) == expected
    assert normalize_text(expected, patterns) == expected  # idempotent


def test_normalize_text_composes_the_seed_unchanged() -> None:
    assert normalize_text(SEED) == SEED
    assert normalize_text(unicodedata.normalize("NFD", SEED)) == SEED


@pytest.mark.parametrize(
    "patterns",
    [
        pytest.param(["(unclosed"], id="unbalanced"),
        pytest.param(["^Foto:", "[a-"], id="bad-range-second"),
        pytest.param([""], id="empty"),
        pytest.param(["   "], id="blank"),
        pytest.param("^Aktualisiert am", id="string-not-list"),
    ],
)
def test_invalid_ignore_patterns_raise_config_error_naming_them(patterns: list[str]) -> None:
    bad = patterns if isinstance(patterns, str) else patterns[-1]
    with pytest.raises(ConfigError, match="ignore pattern") as info:
        normalize_text("Titel\nText", patterns)
    assert repr(bad) in str(info.value)
    with pytest.raises(ConfigError):
        compare("Titel", "Titel", patterns)


def test_compile_ignore_patterns_is_case_insensitive() -> None:
    (pattern,) = compile_ignore_patterns([r"^aktualisiert"])
    assert pattern.search(UPDATED)


# --- fingerprint -------------------------------------------------------------------------


def test_fingerprint_is_sha256_hex_and_stable() -> None:
    empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert fingerprint("") == empty
    assert fingerprint(SEED) == fingerprint("\n".join(SEED_LINES))
    assert len(fingerprint(SEED)) == 64


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(SEED, SEED.replace("Rutte", "Rutta", 1), id="one-letter"),
        pytest.param(SEED, SEED.replace("Bündnis.", "Bündnis!", 1), id="punctuation"),
        pytest.param("Grüße", "Grusse", id="umlaut"),
    ],
)
def test_fingerprint_differs_for_small_edits(a: str, b: str) -> None:
    assert fingerprint(a) != fingerprint(b)


def test_fingerprint_of_normalised_text_ignores_composition() -> None:
    nfd = unicodedata.normalize("NFD", SEED)
    assert nfd != SEED
    assert fingerprint(normalize_text(nfd)) == fingerprint(normalize_text(SEED))


# --- compare: kinds and classes ----------------------------------------------------------

WHITESPACE_NOISE = "\r\n".join(f"  {line.replace(' ', '  ')}\u00a0" for line in SEED_LINES) + "\n\n"


@pytest.mark.parametrize(
    ("previous", "current", "patterns", "kind", "change_class"),
    [
        pytest.param(None, SEED, (), "new", None, id="new"),
        pytest.param(SEED, SEED, (), "unchanged", None, id="identical"),
        pytest.param(SEED, WHITESPACE_NOISE, (), "unchanged", None, id="whitespace-only"),
        pytest.param(SEED, unicodedata.normalize("NFD", SEED), (), "unchanged", None, id="nfd"),
        pytest.param(
            SEED, SEED.replace("Trump", "Tr\u200bump"), (), "unchanged", None, id="zero-width"
        ),
        pytest.param(
            inserted(2, UPDATED),
            inserted(2, "Aktualisiert am 25.11.2024, 09:10 Uhr"),
            (r"^Aktualisiert am",),
            "unchanged",
            None,
            id="ignored-timestamp",
        ),
        pytest.param(
            inserted(2, UPDATED),
            inserted(2, "Aktualisiert am 25.11.2024, 09:10 Uhr"),
            (),
            "changed",
            "minor",
            id="timestamp-not-ignored",
        ),
        pytest.param(
            SEED,
            SEED.replace("geschickter Diplomat", "erfahrener Diplomat"),
            (),
            "changed",
            "minor",
            id="one-word",
        ),
        pytest.param(
            SEED,
            SEED.replace(RUTTE_SENTENCE, "Beobachter bleiben dennoch skeptisch."),
            (),
            "changed",
            "major",
            id="sentence-rewritten",
        ),
        pytest.param(
            SEED, inserted(14, NEW_PARAGRAPH), (), "changed", "major", id="paragraph-added"
        ),
        pytest.param(
            SEED, inserted(14, "Mehr zum Thema"), (), "changed", "minor", id="subheading-added"
        ),
        pytest.param(SEED, edited(_8=None), (), "changed", "major", id="paragraph-removed"),
        pytest.param(
            SEED, edited(title="Trump trifft Rutte"), (), "changed", "title", id="title-only"
        ),
        pytest.param(
            SEED,
            edited(title="Trump trifft Rutte", _15="- #USA"),
            (),
            "changed",
            "minor",
            id="title-and-small-body",
        ),
        pytest.param(
            SEED,
            edited(title="Trump trifft Rutte", _8=None),
            (),
            "changed",
            "major",
            id="title-and-big-body",
        ),
        pytest.param(
            SEED,
            "Ganz anderer Titel\n" + "\n".join(["Neuer Text hier."] * 3),
            (),
            "changed",
            "major",
            id="rewrite",
        ),
    ],
)
def test_compare_kind_and_class(
    previous: str | None,
    current: str,
    patterns: tuple[str, ...],
    kind: str,
    change_class: str | None,
) -> None:
    change = compare(previous, current, patterns)
    assert (change.kind, change.change_class) == (kind, change_class)
    assert change.fingerprint == fingerprint(normalize_text(current, patterns))
    assert (change.diff is not None) == (kind == "changed")


def test_sentence_edit_names_old_and_new_sentence_with_exact_counts() -> None:
    new_sentence = "Beobachter bleiben dennoch skeptisch."
    change = compare(SEED, SEED.replace(RUTTE_SENTENCE, new_sentence))
    assert change.diff is not None
    (paragraph,) = change.diff.changes
    assert paragraph.op == "modified"
    assert paragraph.old is not None and RUTTE_SENTENCE in paragraph.old
    assert paragraph.new is not None and new_sentence in paragraph.new
    assert (paragraph.old_index, paragraph.new_index) == (9, 9)  # body paragraphs from 0
    # Hand-counted: "Diese besondere Beziehung könnte sich als wertvoll erweisen - 2019
    # bezeichnete Trump Rutte sogar als seinen Freund." is 17 tokens, the new one 4.
    assert (paragraph.words_added, paragraph.words_removed) == (4, 17)
    assert change.summary == "major edit: 1 paragraph modified (+4/-17 words)"


def test_small_sentence_edit_is_minor_with_exact_counts() -> None:
    change = compare(SEED, SEED.replace("seit Oktober", "seit dem 1. Oktober"))
    assert change.diff is not None
    (paragraph,) = change.diff.changes
    assert (paragraph.words_added, paragraph.words_removed) == (2, 0)
    assert change.change_class == "minor"
    assert change.summary == "minor edit: 1 paragraph modified (+2/-0 words)"


def test_paragraph_added() -> None:
    diff = diff_texts(SEED, inserted(14, NEW_PARAGRAPH))
    assert diff.changes == (
        ParagraphChange("added", None, NEW_PARAGRAPH, 14, 0, old_index=None, new_index=13),
    )
    # "Ein Sprecher des Weißen Hauses wollte sich am Abend nicht zu dem Treffen äußern." is 14.
    assert (diff.paragraphs_added, diff.words_added, diff.words_removed) == (1, 14, 0)
    assert (diff.old_words, diff.new_words) == (342, 356)


def test_paragraph_removed() -> None:
    diff = diff_texts(SEED, edited(_8=None))
    (paragraph,) = diff.changes
    assert (paragraph.op, paragraph.old, paragraph.new) == ("removed", SEED_LINES[8], None)
    assert (paragraph.old_index, paragraph.new_index) == (7, None)
    # "Die Aussage Trumps, er würde Russland sogar "ermutigen zu tun, was immer sie
    # wollen", sorgte für erhebliche Verunsicherung im Bündnis." is 20 tokens.
    assert (diff.paragraphs_removed, diff.words_added, diff.words_removed) == (1, 0, 20)


def test_moved_paragraph_is_removed_and_added() -> None:
    lines = list(SEED_LINES)
    lines.insert(3, lines.pop(8))
    diff = diff_texts(SEED, "\n".join(lines))
    assert sorted(change.op for change in diff.changes) == ["added", "removed"]
    assert {change.old or change.new for change in diff.changes} == {SEED_LINES[8]}


def test_title_only() -> None:
    change = compare(SEED, edited(title="Trump trifft Rutte"))
    assert change.diff is not None
    assert change.diff.changes == ()
    assert (change.diff.old_title, change.diff.new_title) == (SEED_LINES[0], "Trump trifft Rutte")
    assert change.summary == f'title changed: "{SEED_LINES[0]}" → "Trump trifft Rutte"'


def test_title_and_body_keep_title_visible() -> None:
    change = compare(SEED, edited(title="Trump trifft Rutte", _15="- #USA"))
    assert change.diff is not None and change.diff.title_changed
    assert change.summary == "minor edit: title changed; 1 paragraph modified (+1/-1 words)"


def test_large_rewrite_counts_everything() -> None:
    diff = diff_texts(SEED, "Ganz anderer Titel\nNeuer Text hier.")
    assert diff.paragraphs_removed == 15
    assert diff.paragraphs_added == 1
    assert (diff.words_added, diff.words_removed) == (3, 342)


# --- summaries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "summary"),
    [
        pytest.param("T\nA", "T\nA", "no change", id="none"),
        pytest.param("T\nA", "U\nA", "title changed", id="title"),
        pytest.param("T\na b c", "T\na b d", "1 paragraph modified (+1/-1 words)", id="modified"),
        pytest.param("T\na", "T\na\nx y\nz", "2 paragraphs added (+3/-0 words)", id="added"),
        pytest.param("T\na\nb c", "T", "2 paragraphs removed (+0/-3 words)", id="removed"),
        pytest.param(
            "T\neins zwei\ndrei",
            "U\neins zwo\nvier fünf sechs",
            "title changed; 1 paragraph modified, 1 added, 1 removed (+4/-2 words)",
            id="everything",
        ),
        pytest.param(
            "T\nx\na b c d\ne f g h",
            "T\nx y\na b c X\ne f g Y",
            "3 paragraphs modified (+3/-2 words)",
            id="plural-modified",
        ),
    ],
)
def test_diff_summary(old: str, new: str, summary: str) -> None:
    assert diff_texts(old, new).summary == summary


@pytest.mark.parametrize(
    ("previous", "current", "summary"),
    [
        pytest.param(None, SEED, "new article (342 words)", id="new-seed"),
        pytest.param(None, "Titel\nEins", "new article (1 word)", id="new-one-word"),
        pytest.param(None, "Nur ein Titel", "new article (0 words)", id="new-title-only"),
        pytest.param(SEED, SEED + "\n", "unchanged", id="unchanged"),
        pytest.param(
            SEED,
            SEED.replace("geschickter", "erfahrener"),
            "minor edit: 1 paragraph modified (+1/-1 words)",
            id="minor",
        ),
        pytest.param(
            "T\na b",
            "T\na c",
            "major edit: 1 paragraph modified (+1/-1 words)",
            id="tiny-body-major",
        ),
        pytest.param("Alt\na", "Neu\na", 'title changed: "Alt" → "Neu"', id="title"),
    ],
)
def test_change_summary(previous: str | None, current: str, summary: str) -> None:
    assert compare(previous, current).summary == summary


def test_diff_texts_normalises_its_inputs() -> None:
    assert diff_texts("T\n\nA  b\u00a0", "T\nA b").changes == ()


# --- pairing of replaced paragraphs ------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "ops"),
    [
        pytest.param(
            "T\na b c d\ne f g h",
            "T\nx y z\na b c X",
            [("added", None, 0), ("modified", 0, 1), ("removed", 1, None)],
            id="pair-after-insert",
        ),
        pytest.param(
            "T\na b c d\ne f g h",
            "T\ne f g X\na b c Y",
            [("added", None, 0), ("modified", 0, 1), ("removed", 1, None)],
            id="no-crossing-pairs",
        ),
        pytest.param(
            "T\na b c d\ne f g h",
            "T\ne f X Y\na b c d e",
            [("added", None, 0), ("modified", 0, 1), ("removed", 1, None)],
            id="best-similarity-first",
        ),
        pytest.param(
            "T\na b c d",
            "T\na X Y Z",
            [("removed", 0, None), ("added", None, 0)],
            id="dissimilar-not-paired",
        ),
        pytest.param("T\na b", "T\na c", [("modified", 0, 0)], id="half-similar-paired"),
    ],
)
def test_replaced_paragraphs_pair_in_order(
    old: str, new: str, ops: list[tuple[str, int | None, int | None]]
) -> None:
    changes = diff_texts(old, new).changes
    assert [(c.op, c.old_index, c.new_index) for c in changes] == ops


# --- classify ----------------------------------------------------------------------------


def _body(n: int) -> str:
    """A title and ``n`` distinct words, twenty to a paragraph."""
    words = [f"w{i}" for i in range(n)]
    return "\n".join(["Titel"] + [" ".join(words[i : i + 20]) for i in range(0, n, 20)])


def _replace_words(text: str, count: int) -> str:
    for i in range(count):
        text = text.replace(f"w{i} ", f"x{i} ", 1)
    return text


@pytest.mark.parametrize(
    ("words", "replaced", "kwargs", "expected"),
    [
        pytest.param(200, 5, {}, "minor", id="10-words-of-200-is-minor"),
        pytest.param(200, 6, {}, "major", id="12-words-is-major"),
        pytest.param(40, 1, {}, "minor", id="2-words-of-40-is-5-percent"),
        pytest.param(39, 1, {}, "major", id="2-words-of-39-over-5-percent"),
        pytest.param(1000, 5, {}, "minor", id="long-article-cap-10"),
        pytest.param(1000, 6, {}, "major", id="long-article-over-cap"),
        pytest.param(200, 1, {"minor_max_words": 0}, "major", id="no-minor-budget"),
        pytest.param(10, 5, {"minor_max_percent": 100}, "minor", id="share-off"),
    ],
)
def test_classify_thresholds(
    words: int, replaced: int, kwargs: dict[str, float], expected: str
) -> None:
    diff = diff_texts(_body(words), _replace_words(_body(words), replaced))
    assert diff.words_added + diff.words_removed == 2 * replaced
    assert classify(diff, **kwargs) == expected  # type: ignore[arg-type]


def test_classify_uses_the_longer_body() -> None:
    diff = diff_texts(_body(200), _body(200) + "\n" + " ".join(["neu"] * 10))
    assert (diff.words_added, diff.new_words) == (10, 210)
    assert classify(diff) == "minor"


@pytest.mark.parametrize(
    ("diff", "kwargs"),
    [
        pytest.param(diff_texts("T\na", "T\na"), {}, id="no-change"),
        pytest.param(diff_texts("T\na", "T\nb"), {"minor_max_words": -1}, id="negative-words"),
        pytest.param(diff_texts("T\na", "T\nb"), {"minor_max_percent": -1}, id="negative-percent"),
    ],
)
def test_classify_refuses(diff: Diff, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        classify(diff, **kwargs)  # type: ignore[arg-type]


def test_compare_passes_thresholds() -> None:
    small = SEED.replace("geschickter Diplomat", "erfahrener Diplomat")
    assert compare(SEED, small, minor_max_words=1).change_class == "major"


# --- word_diff ---------------------------------------------------------------------------

WORD_PAIRS = [
    pytest.param(
        SEED_LINES[10],
        SEED_LINES[10].replace(RUTTE_SENTENCE, "Beobachter bleiben dennoch skeptisch."),
        id="seed-sentence",
    ),
    pytest.param(
        SEED_LINES[1],
        SEED_LINES[1].replace("Palm Beach", "Mar-a-Lago, Palm Beach"),
        id="seed-insert",
    ),
    pytest.param("Trump hatte im Frühjahr erklärt", "Im Sommer hatte Trump erklärt", id="reorder"),
    pytest.param("", "Neu hier.", id="from-empty"),
    pytest.param("Alt.", "", id="to-empty"),
    pytest.param("a  b\u00a0c", "a b c d", id="whitespace"),
    pytest.param("eins zwei", "drei vier", id="disjoint"),
]


@pytest.mark.parametrize(("old", "new"), WORD_PAIRS)
def test_word_diff_round_trips(old: str, new: str) -> None:
    ops = word_diff(old, new)
    assert " ".join(text for op, text in ops if op != "delete") == " ".join(new.split())
    assert " ".join(text for op, text in ops if op != "insert") == " ".join(old.split())
    assert all(text for _, text in ops)


@pytest.mark.parametrize(
    ("old", "new", "ops"),
    [
        pytest.param(
            "Trump hatte im Frühjahr erklärt",
            "Trump hatte im Sommer erklärt",
            [
                ("equal", "Trump hatte im"),
                ("delete", "Frühjahr"),
                ("insert", "Sommer"),
                ("equal", "erklärt"),
            ],
            id="replace",
        ),
        pytest.param(
            "geworden ist.",
            "geworden ist!",
            [("equal", "geworden"), ("delete", "ist."), ("insert", "ist!")],
            id="punctuation-attached",
        ),
        pytest.param("Rutte", "Mark Rutte", [("insert", "Mark"), ("equal", "Rutte")], id="insert"),
        pytest.param("gleich", "gleich", [("equal", "gleich")], id="equal"),
    ],
)
def test_word_diff_ops(old: str, new: str, ops: list[tuple[str, str]]) -> None:
    assert word_diff(old, new) == ops


# --- values: validation and serialisation ------------------------------------------------

FP = fingerprint("x")
SMALL_DIFF = diff_texts("T\na b", "U\na c")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(
            lambda: ParagraphChange("moved", "a", "b", 0, 0, 0, 0),  # type: ignore[arg-type]
            "'moved'",
            id="op",
        ),
        pytest.param(
            lambda: ParagraphChange("added", "a", "b", 1, 0, None, 0), "added", id="added-with-old"
        ),
        pytest.param(
            lambda: ParagraphChange("removed", "a", None, 0, 1),
            "old_index",
            id="removed-without-index",
        ),
        pytest.param(
            lambda: ParagraphChange("modified", "a", "b", -1, 0, 0, 0), "-1", id="negative-words"
        ),
        pytest.param(
            lambda: ParagraphChange("modified", "a", "b", 1, 1, -2, 0), "-2", id="negative-index"
        ),
        pytest.param(
            lambda: ParagraphChange("added", None, "b", 1, 3, new_index=0),
            "other side",
            id="added-with-removed-words",
        ),
        pytest.param(lambda: replace(SMALL_DIFF, words_added=7), "words_added=7", id="diff-sum"),
        pytest.param(
            lambda: replace(SMALL_DIFF, paragraphs_added=1), "paragraphs_added=1", id="diff-count"
        ),
        pytest.param(
            lambda: replace(SMALL_DIFF, title_changed=False), "title_changed=False", id="diff-title"
        ),
        pytest.param(lambda: replace(SMALL_DIFF, old_words=-3), "-3", id="diff-negative"),
        pytest.param(
            lambda: Change("gone", FP, None, None, "x"),  # type: ignore[arg-type]
            "'gone'",
            id="kind",
        ),
        pytest.param(lambda: Change("new", "abc", None, None, "x"), "'abc'", id="fingerprint"),
        pytest.param(
            lambda: Change("changed", FP, None, SMALL_DIFF, "x"), "None", id="changed-without-class"
        ),
        pytest.param(
            lambda: Change("changed", FP, "minor", None, "x"),
            "diff None",
            id="changed-without-diff",
        ),
        pytest.param(
            lambda: Change("unchanged", FP, "minor", None, "x"),
            "'minor'",
            id="unchanged-with-class",
        ),
        pytest.param(
            lambda: Change("new", FP, None, None, "a\nb"),
            "one non-empty line",
            id="multiline-summary",
        ),
    ],
)
def test_values_validate_and_name_the_bad_value(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        build()
    assert message in str(info.value)


def test_diff_as_dict_is_json_and_round_trips() -> None:
    diff = compare(SEED, edited(title="Trump trifft Rutte", _8=None, _15="- #USA")).diff
    assert diff is not None
    data = json.loads(json.dumps(diff.as_dict()))
    assert data["summary"] == diff.summary
    assert data["changes"][0]["op"] == "removed"
    assert Diff.from_dict(data) == diff


def test_diff_changes_become_a_tuple() -> None:
    diff = replace(SMALL_DIFF, changes=list(SMALL_DIFF.changes))  # type: ignore[arg-type]
    assert isinstance(diff.changes, tuple)
    assert diff == SMALL_DIFF
