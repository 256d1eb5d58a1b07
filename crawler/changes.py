"""Change detection: normalise article text, fingerprint it, diff two versions, classify the edit.

An article text has the title on line 1, then one body paragraph per line (subheadings,
``- list items`` and table rows count as paragraphs). Extraction already keeps the page
template out, so normalisation removes only what churns without meaning: Unicode composition
(NFC), invisible characters, whitespace, and whole lines matching the source's ignore patterns
(``^Aktualisiert am``). Quotes, dashes and punctuation are content and stay as they are.

Equal fingerprints of normalised texts mean "unchanged". Otherwise a :class:`Diff` says whether
the title changed and which body paragraphs were added, removed or modified, with word counts,
and :func:`classify` names the edit:

    title   only the title changed
    minor   body words added + removed <= 10 and <= 5 % of the body (the longer version's)
    major   anything bigger, including any added or removed paragraph over that budget

Everything here is pure: strings in, frozen values out.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from difflib import SequenceMatcher
from typing import Any, Literal

from crawler.errors import ConfigError

ParagraphOp = Literal["added", "removed", "modified"]
ChangeKind = Literal["new", "unchanged", "changed"]
ChangeClass = Literal["title", "minor", "major"]
WordOp = Literal["equal", "insert", "delete"]

MINOR_MAX_WORDS = 10  # words added + removed in the body
MINOR_MAX_PERCENT = 5.0  # of the body words of the longer version
PAIR_MIN_RATIO = 0.5  # word similarity from which a replaced paragraph counts as modified

# Invisible characters that CMSs insert and drop at will (soft hyphens come from hyphenation
# plugins). ZWJ/ZWNJ stay: they carry meaning in emoji sequences and several scripts.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b\u2060\ufeff]")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def compile_ignore_patterns(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Compile per-source ignore patterns (case-insensitive regexes for whole lines).

    Raises :class:`ConfigError` naming the pattern if one is empty or not a valid regex.
    """
    if isinstance(patterns, str):
        raise ConfigError(f"ignore patterns must be a list of regexes, not a string: {patterns!r}")
    compiled = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigError(f"ignore pattern must be a non-empty string, got {pattern!r}")
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise ConfigError(f"invalid ignore pattern {pattern!r}: {exc}") from None
    return tuple(compiled)


def normalize_text(text: str, ignore_patterns: Sequence[str] = ()) -> str:
    """Return ``text`` in the form fingerprints and diffs are taken of.

    NFC, invisible characters removed, whitespace runs in a line collapsed to one space, lines
    stripped; empty lines and lines matching an ignore pattern (``re.search``, case-insensitive,
    on the normalised line) dropped. Raises :class:`ConfigError` for a bad pattern.
    """
    ignored = compile_ignore_patterns(ignore_patterns)
    text = unicodedata.normalize("NFC", _INVISIBLE.sub("", text))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line and not any(p.search(line) for p in ignored))


def fingerprint(text: str) -> str:
    """SHA-256 hex digest of ``text`` encoded as UTF-8.

    Callers pass :func:`normalize_text` output, so that texts differing only in what
    normalisation removes share a fingerprint.
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ParagraphChange:
    """One body paragraph added, removed or modified.

    Indexes count body paragraphs from 0 (the title is not one): ``old_index`` in the old
    version (``None`` for added), ``new_index`` in the new one (``None`` for removed).
    """

    op: ParagraphOp
    old: str | None
    new: str | None
    words_added: int
    words_removed: int
    old_index: int | None = None
    new_index: int | None = None

    def __post_init__(self) -> None:
        if self.op not in ("added", "removed", "modified"):
            raise ValueError(f"paragraph change op must be added, removed or modified: {self.op!r}")
        self._check_side("old", self.old, self.old_index, wanted=self.op != "added")
        self._check_side("new", self.new, self.new_index, wanted=self.op != "removed")
        _check_counts(self, "words_added", "words_removed")
        missing = {"added": self.words_removed, "removed": self.words_added}.get(self.op, 0)
        if missing:
            raise ValueError(f"{self.op} paragraph with words on the other side: {self!r}")

    def _check_side(self, name: str, text: str | None, index: int | None, *, wanted: bool) -> None:
        if (text is not None) != wanted or (index is not None) != wanted:
            state = "needs" if wanted else "must not have"
            raise ValueError(f"{self.op} paragraph {state} {name} and {name}_index: {self!r}")
        if index is not None and index < 0:
            raise ValueError(f"{name}_index must not be negative: {index}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class Diff:
    """What changed between two versions: the title, and body paragraphs with word counts.

    Counts cover the body only; ``old_words``/``new_words`` are the body word counts of the
    two versions. ``changes`` lists paragraph changes in document order.
    """

    title_changed: bool
    old_title: str
    new_title: str
    paragraphs_added: int
    paragraphs_removed: int
    paragraphs_modified: int
    words_added: int
    words_removed: int
    changes: tuple[ParagraphChange, ...]
    old_words: int
    new_words: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", tuple(self.changes))
        if self.title_changed != (self.old_title != self.new_title):
            raise ValueError(
                f"title_changed={self.title_changed} but titles are "
                f"{self.old_title!r} and {self.new_title!r}"
            )
        _check_counts(
            self,
            "paragraphs_added",
            "paragraphs_removed",
            "paragraphs_modified",
            "words_added",
            "words_removed",
            "old_words",
            "new_words",
        )
        derived = _totals(self.changes)
        for name, value in derived.items():
            if getattr(self, name) != value:
                raise ValueError(f"{name}={getattr(self, name)} but the changes add up to {value}")

    @property
    def body_changed(self) -> bool:
        """Whether any body paragraph was added, removed or modified."""
        return bool(self.changes)

    @property
    def summary(self) -> str:
        """One line, e.g. ``title changed; 1 paragraph modified, 2 added (+37/-4 words)``."""
        parts = ["title changed"] if self.title_changed else []
        counts = [
            (n, label)
            for n, label in (
                (self.paragraphs_modified, "modified"),
                (self.paragraphs_added, "added"),
                (self.paragraphs_removed, "removed"),
            )
            if n
        ]
        if counts:
            items = [f"{n} {label}" for n, label in counts]
            items[0] = f"{_plural(counts[0][0], 'paragraph')} {counts[0][1]}"
            parts.append(f"{', '.join(items)} (+{self.words_added}/-{self.words_removed} words)")
        return "; ".join(parts) or "no change"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``summary``; :meth:`from_dict` reads it back."""
        data = asdict(self)
        data["changes"] = [change.as_dict() for change in self.changes]
        data["summary"] = self.summary
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diff:
        """Rebuild a :class:`Diff` from :meth:`as_dict` output (as stored with a version)."""
        values = {f.name: data[f.name] for f in fields(cls) if f.name != "changes"}
        changes = tuple(ParagraphChange(**change) for change in data["changes"])
        return cls(changes=changes, **values)


@dataclass(frozen=True)
class Change:
    """The outcome of comparing a fetched text with the previous version.

    ``diff`` and ``change_class`` are set exactly when ``kind`` is ``"changed"``.
    """

    kind: ChangeKind
    fingerprint: str
    change_class: ChangeClass | None
    diff: Diff | None
    summary: str

    def __post_init__(self) -> None:
        if self.kind not in ("new", "unchanged", "changed"):
            raise ValueError(f"change kind must be new, unchanged or changed: {self.kind!r}")
        if not _FINGERPRINT.fullmatch(self.fingerprint):
            raise ValueError(f"fingerprint must be 64 lower-case hex digits: {self.fingerprint!r}")
        if self.kind == "changed":
            if self.diff is None or self.change_class not in ("title", "minor", "major"):
                diff = "a diff" if self.diff is not None else "diff None"
                raise ValueError(
                    f"a changed text needs a diff and a class, got class "
                    f"{self.change_class!r} and {diff}"
                )
        elif self.diff is not None or self.change_class is not None:
            raise ValueError(f"a {self.kind} text has no diff or class, got {self.change_class!r}")
        if not self.summary or "\n" in self.summary:
            raise ValueError(f"summary must be one non-empty line: {self.summary!r}")


def word_diff(old: str, new: str) -> list[tuple[WordOp, str]]:
    """Word-level edit of one paragraph, as runs of space-joined tokens in order.

    Tokens split on whitespace and keep punctuation attached. Joining the ``equal`` and
    ``insert`` runs with spaces gives ``new`` (whitespace-normalised), ``equal`` and
    ``delete`` runs give ``old``. A replaced run comes as a delete, then an insert.
    """
    a, b = old.split(), new.split()
    ops: list[tuple[WordOp, str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            ops.append(("equal", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            ops.append(("delete", " ".join(a[i1:i2])))
        if j2 > j1:
            ops.append(("insert", " ".join(b[j1:j2])))
    return ops


def diff_texts(old: str, new: str) -> Diff:
    """Diff two article texts: the title, then body paragraphs aligned in order.

    Both texts are normalised first (without ignore patterns; normalising is idempotent).
    Replaced paragraphs pair up as "modified" when their words are at least 50 % similar.
    """
    old_title, old_body = _split(normalize_text(old))
    new_title, new_body = _split(normalize_text(new))
    changes = tuple(_align(old_body, new_body))
    return Diff(
        title_changed=old_title != new_title,
        old_title=old_title,
        new_title=new_title,
        changes=changes,
        old_words=_count_words(old_body),
        new_words=_count_words(new_body),
        **_totals(changes),
    )


def classify(
    diff: Diff,
    minor_max_words: int = MINOR_MAX_WORDS,
    minor_max_percent: float = MINOR_MAX_PERCENT,
) -> ChangeClass:
    """Name the edit a diff describes: ``title``, ``minor`` or ``major`` (see module docstring).

    The body decides when it changed; ``title`` means only the title did. Raises
    ``ValueError`` for a diff without any change or for negative thresholds.
    """
    if minor_max_words < 0 or minor_max_percent < 0:
        raise ValueError(f"thresholds must not be negative: {minor_max_words}, {minor_max_percent}")
    if not diff.body_changed:
        if not diff.title_changed:
            raise ValueError("cannot classify a diff without any change")
        return "title"
    changed = diff.words_added + diff.words_removed
    body = max(diff.old_words, diff.new_words)
    small = changed <= minor_max_words and changed * 100 <= minor_max_percent * body
    return "minor" if small else "major"


def compare(
    previous: str | None,
    current: str,
    ignore_patterns: Sequence[str] = (),
    *,
    minor_max_words: int = MINOR_MAX_WORDS,
    minor_max_percent: float = MINOR_MAX_PERCENT,
) -> Change:
    """Compare the current text of an article with the previous version (``None``: first seen).

    Both are normalised with the source's ignore patterns and fingerprinted; returns a new,
    unchanged or changed :class:`Change`. Raises :class:`ConfigError` for a bad pattern.
    """
    clean = normalize_text(current, ignore_patterns)
    digest = fingerprint(clean)
    if previous is None:
        words = _count_words(_split(clean)[1])
        return Change("new", digest, None, None, f"new article ({_plural(words, 'word')})")
    before = normalize_text(previous, ignore_patterns)
    if fingerprint(before) == digest:
        return Change("unchanged", digest, None, None, "unchanged")
    diff = diff_texts(before, clean)
    change_class = classify(diff, minor_max_words, minor_max_percent)
    if change_class == "title":
        summary = f'title changed: "{diff.old_title}" → "{diff.new_title}"'
    else:
        summary = f"{change_class} edit: {diff.summary}"
    return Change("changed", digest, change_class, diff, summary)


def _split(text: str) -> tuple[str, tuple[str, ...]]:
    lines = text.split("\n") if text else []
    return (lines[0] if lines else ""), tuple(lines[1:])


def _count_words(paragraphs: Sequence[str]) -> int:
    return sum(len(paragraph.split()) for paragraph in paragraphs)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _check_counts(value: object, *names: str) -> None:
    for name in names:
        if getattr(value, name) < 0:
            raise ValueError(f"{name} must not be negative: {getattr(value, name)}")


def _totals(changes: Sequence[ParagraphChange]) -> dict[str, int]:
    ops = [change.op for change in changes]
    return {
        "paragraphs_added": ops.count("added"),
        "paragraphs_removed": ops.count("removed"),
        "paragraphs_modified": ops.count("modified"),
        "words_added": sum(change.words_added for change in changes),
        "words_removed": sum(change.words_removed for change in changes),
    }


def _align(old: Sequence[str], new: Sequence[str]) -> Iterator[ParagraphChange]:
    """Paragraph changes in document order: unchanged runs skipped, replaced runs paired."""
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "equal":
            yield from _pair_block(old, new, range(i1, i2), range(j1, j2))


def _pair_block(
    old: Sequence[str], new: Sequence[str], olds: range, news: range
) -> Iterator[ParagraphChange]:
    i, j = olds.start, news.start
    for pi, pj in [*_best_pairs(old, new, olds, news), (olds.stop, news.stop)]:
        for k in range(i, pi):
            yield ParagraphChange("removed", old[k], None, 0, len(old[k].split()), old_index=k)
        for k in range(j, pj):
            yield ParagraphChange("added", None, new[k], len(new[k].split()), 0, new_index=k)
        if pi < olds.stop:
            yield _modified(old[pi], new[pj], pi, pj)
        i, j = pi + 1, pj + 1


def _best_pairs(
    old: Sequence[str], new: Sequence[str], olds: range, news: range
) -> list[tuple[int, int]]:
    """Pairs of similar paragraphs, best first, kept only if they do not cross earlier ones."""
    scored = sorted(_similar_pairs(old, new, olds, news), key=lambda s: (-s[0], s[1], s[2]))
    chosen: list[tuple[int, int]] = []
    for _, i, j in scored:
        if all((a < i) == (b < j) and a != i and b != j for a, b in chosen):
            chosen.append((i, j))
    return sorted(chosen)


def _similar_pairs(
    old: Sequence[str], new: Sequence[str], olds: range, news: range
) -> Iterator[tuple[float, int, int]]:
    matcher: SequenceMatcher[str] = SequenceMatcher(None, autojunk=False)
    for j in news:
        matcher.set_seq2(new[j].split())  # difflib caches the second sequence: vary the first
        for i in olds:
            matcher.set_seq1(old[i].split())
            if (
                matcher.real_quick_ratio() >= PAIR_MIN_RATIO
                and matcher.quick_ratio() >= PAIR_MIN_RATIO
                and (ratio := matcher.ratio()) >= PAIR_MIN_RATIO
            ):
                yield ratio, i, j


def _modified(old: str, new: str, old_index: int, new_index: int) -> ParagraphChange:
    ops = word_diff(old, new)
    added = sum(len(text.split()) for op, text in ops if op == "insert")
    removed = sum(len(text.split()) for op, text in ops if op == "delete")
    return ParagraphChange("modified", old, new, added, removed, old_index, new_index)
