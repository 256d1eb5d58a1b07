"""Extraction quality: our ``extract().body`` against bare trafilatura, side by side.

Usage::

    .venv/bin/python bench/extraction_quality.py [--limit N] [--out PATH] [--dump DIR]

Subsets (see /work/shared/extraction-devset/README.md for the scoring rules):

- ``readability``: 92 pages with full ground truth; bag-of-token precision, recall, F1
  (NFC, lower-case, word tokens; character tokens for zh and ja, also reported apart).
- ``trafilatura``: 990 pages with must-contain (``with``) and must-not-contain
  (``without``) snippets; with-recall, without-clean and upstream's pseudo P/R/F1,
  overall and for ``lang == "de"``.
- ``fixtures``: tests/pages/<slug>.html against the golden body (golden minus line 1).

Both extractors get the same ``str``: the page bytes decoded once by our
``decode_html``, so only the extraction differs. Bare trafilatura is
``trafilatura.extract(html, url=url, include_comments=False)`` (txt output, its defaults
otherwise). Times are wall-clock seconds per page, measured in the same worker process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import trafilatura
from rich.console import Console
from rich.table import Table

from crawler.errors import ExtractionError
from crawler.extraction import decode_html, extract

ROOT = Path(__file__).resolve().parent.parent
DEVSET = ROOT.parent / "shared" / "extraction-devset"
FIXTURES = ROOT / "tests" / "pages"
DEFAULT_OUT = ROOT / "bench" / "results" / "extraction_quality.json"
CJK_LANGS = {"zh", "ja"}
SYSTEMS = ("bare", "ours")


@dataclass(frozen=True)
class Page:
    """One page to score: where its HTML is and what it is compared with."""

    subset: str
    id: str
    html_path: str
    url: str | None
    lang: str
    reference: str = ""
    with_: tuple[str, ...] = ()
    without: tuple[str, ...] = ()


def load_readability(root: Path) -> list[Page]:
    """The Readability test pages with their full-text ground truth."""
    index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    return [
        Page(
            subset="readability",
            id=name,
            html_path=str(root / rec["html"]),
            url=None,
            lang=rec.get("lang") or "",
            reference=(root / rec["ground_truth"]).read_text(encoding="utf-8"),
        )
        for name, rec in sorted(index["pages"].items())
    ]


def load_trafilatura_eval(root: Path) -> list[Page]:
    """The trafilatura evaluation pages with their must/must-not snippets."""
    index = json.loads((root / "annotations.json").read_text(encoding="utf-8"))
    pages = []
    for page_id, rec in sorted(index["pages"].items()):
        url = (rec.get("url") or "").removeprefix("hard::") or None
        pages.append(
            Page(
                subset="trafilatura",
                id=page_id,
                html_path=str(root / rec["html"]),
                url=url,
                lang=rec.get("lang") or "",
                with_=tuple(rec.get("with") or ()),
                without=tuple(rec.get("without") or ()),
            )
        )
    return pages


def load_fixtures(root: Path) -> list[Page]:
    """Our own fixture pages; the golden body is the expected text minus its title line."""
    pages = []
    for html_path in sorted(root.glob("*.html")):
        expected = html_path.with_suffix(".expected.txt")
        if not expected.exists():
            continue
        meta_path = html_path.with_suffix(".meta.json")
        meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
        golden = expected.read_text(encoding="utf-8").splitlines()
        pages.append(
            Page(
                subset="fixtures",
                id=html_path.stem,
                html_path=str(html_path),
                url=meta.get("url"),
                lang=meta.get("language") or meta.get("lang") or "",
                reference="\n".join(golden[1:]),
            )
        )
    return pages


def read_html(path: str) -> bytes:
    """The raw page bytes, gunzipped when stored as ``.gz``."""
    data = Path(path).read_bytes()
    return gzip.decompress(data) if path.endswith(".gz") else data


def tokens(text: str, lang: str) -> Counter[str]:
    """A bag of tokens: NFC, lower-case, word tokens (characters for zh and ja)."""
    norm = unicodedata.normalize("NFC", text).lower()
    if lang in CJK_LANGS:
        return Counter(ch for ch in norm if ch.isalnum())
    return Counter(re.findall(r"\w+", norm))


def bag_scores(pred: str, ref: str, lang: str) -> dict[str, float]:
    """Token-bag precision, recall and F1 of ``pred`` against ``ref``."""
    p_bag, r_bag = tokens(pred, lang), tokens(ref, lang)
    p_n, r_n = sum(p_bag.values()), sum(r_bag.values())
    tp = sum((p_bag & r_bag).values())
    precision = tp / p_n if p_n else (1.0 if not r_n else 0.0)
    recall = tp / r_n if r_n else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"p": precision, "r": recall, "f1": f1}


def _squash(text: str) -> str:
    return " ".join(text.split())


def snippet_counts(pred: str, page: Page) -> dict[str, int]:
    """Upstream's counts: with-snippets found (tp) or missed (fn), without found (fp) or not."""
    text = _squash(pred)
    found = sum(1 for s in page.with_ if _squash(s) in text)
    leaked = sum(1 for s in page.without if _squash(s) in text)
    return {
        "tp": found,
        "fn": len(page.with_) - found,
        "fp": leaked,
        "tn": len(page.without) - leaked,
    }


def run_bare(source: str, url: str | None) -> str:
    """Bare trafilatura, txt output, comments off."""
    return trafilatura.extract(source, url=url, include_comments=False) or ""


def run_ours(source: str, url: str | None) -> str:
    """Our extraction's body; an :class:`ExtractionError` counts as empty output."""
    try:
        return extract(source, url).body
    except ExtractionError:
        return ""


WARM_UP_HTML = (
    "<html><head><title>Warm-up</title></head><body><article><h1>Warm-up</h1>"
    "<p>Am 3. März 2024 wurde dieser Absatz geschrieben, damit beide Systeme ihre Caches"
    " laden, bevor die Zeit gemessen wird. Er ist lang genug für eine Extraktion.</p>"
    "</article></body></html>"
)


def warm_up() -> None:
    """Worker initialiser: run both systems once so imports and caches are not timed."""
    run_bare(WARM_UP_HTML, None)
    run_ours(WARM_UP_HTML, None)


def score_page(page: Page) -> dict[str, Any]:
    """Run both systems on one page and score them; worker entry point."""
    source = decode_html(read_html(page.html_path))
    row: dict[str, Any] = {"subset": page.subset, "id": page.id, "lang": page.lang}
    for name, runner in (("bare", run_bare), ("ours", run_ours)):
        start = time.perf_counter()
        text = runner(source, page.url)
        row[f"{name}_seconds"] = time.perf_counter() - start
        row[f"{name}_chars"] = len(text)
        row[f"{name}_text"] = text
        if page.subset == "trafilatura":
            row[name] = snippet_counts(text, page)
        else:
            row[name] = bag_scores(text, page.reference, page.lang)
    return row


def macro(rows: list[dict[str, Any]], system: str) -> dict[str, float]:
    """Mean per-page P, R, F1, the median F1 and the mean seconds per page."""
    return {
        "pages": len(rows),
        "precision": statistics.fmean(r[system]["p"] for r in rows),
        "recall": statistics.fmean(r[system]["r"] for r in rows),
        "f1": statistics.fmean(r[system]["f1"] for r in rows),
        "median_f1": statistics.median(r[system]["f1"] for r in rows),
        "seconds_per_page": statistics.fmean(r[f"{system}_seconds"] for r in rows),
    }


def snippet_summary(rows: list[dict[str, Any]], system: str) -> dict[str, float]:
    """Corpus-wide with-recall, without-clean and pseudo precision/recall/F1/accuracy."""
    total = Counter[str]()
    for row in rows:
        total.update(row[system])
    tp, fn, fp, tn = total["tp"], total["fn"], total["fp"], total["tn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "pages": len(rows),
        "with_recall": recall,
        "without_clean": tn / (tn + fp) if tn + fp else 1.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "accuracy": (tp + tn) / (tp + fn + fp + tn) if tp + fn + fp + tn else 0.0,
        "seconds_per_page": statistics.fmean(r[f"{system}_seconds"] for r in rows),
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Group the page rows into the reported slices, each with both systems' figures."""
    slices: dict[str, tuple[list[dict[str, Any]], Any]] = {}
    readability = [r for r in rows if r["subset"] == "readability"]
    if readability:
        slices["readability"] = (readability, macro)
        slices["readability (no zh/ja)"] = (
            [r for r in readability if r["lang"] not in CJK_LANGS],
            macro,
        )
        slices["readability (zh/ja, chars)"] = (
            [r for r in readability if r["lang"] in CJK_LANGS],
            macro,
        )
    tf_rows = [r for r in rows if r["subset"] == "trafilatura"]
    if tf_rows:
        slices["trafilatura-eval"] = (tf_rows, snippet_summary)
        german = [r for r in tf_rows if r["lang"] == "de"]
        slices["trafilatura-eval (de)"] = (german, snippet_summary)
    fixtures = [r for r in rows if r["subset"] == "fixtures"]
    if fixtures:
        slices["fixtures"] = (fixtures, macro)
    return {
        name: {system: fn(subset, system) for system in SYSTEMS}
        for name, (subset, fn) in slices.items()
        if subset
    }


def render(summary: dict[str, dict[str, dict[str, float]]], console: Console) -> None:
    """Print one table: a row per slice and system."""
    table = Table(title="Extraction quality: bare trafilatura vs ours")
    for column in ("slice", "system", "pages", "P", "R", "F1", "median F1 / acc", "ms/page"):
        table.add_column(column, justify="left" if column in ("slice", "system") else "right")
    for name, systems in summary.items():
        for system, fig in systems.items():
            extra = fig.get("median_f1", fig.get("accuracy", 0.0))
            table.add_row(
                name if system == "bare" else "",
                system,
                str(fig["pages"]),
                f"{fig['precision']:.4f}",
                f"{fig['recall']:.4f}",
                f"{fig['f1']:.4f}",
                f"{extra:.4f}",
                f"{fig['seconds_per_page'] * 1000:.1f}",
            )
    console.print(table)


def select(pages: list[Page], limit: int | None, subsets: Iterable[str]) -> Iterator[Page]:
    """The pages of the chosen subsets, at most ``limit`` of each."""
    wanted = set(subsets)
    counts: Counter[str] = Counter()
    for page in pages:
        if page.subset in wanted and (limit is None or counts[page.subset] < limit):
            counts[page.subset] += 1
            yield page


def dump_texts(rows: list[dict[str, Any]], folder: Path) -> None:
    """Write each page's two outputs to ``folder/<subset>/<id>.{bare,ours}.txt``."""
    for row in rows:
        target = folder / row["subset"]
        target.mkdir(parents=True, exist_ok=True)
        for system in SYSTEMS:
            (target / f"{row['id']}.{system}.txt").write_text(row[f"{system}_text"], "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Parse flags, score every page on two worker processes, print and save the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="at most N pages per subset")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--dump", type=Path, default=None, help="write every output here")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--subsets", default="readability,trafilatura,fixtures", help="comma-separated subsets"
    )
    args = parser.parse_args(argv)
    pages = (
        load_readability(DEVSET / "readability-testpages")
        + load_trafilatura_eval(DEVSET / "trafilatura-eval")
        + (load_fixtures(FIXTURES) if FIXTURES.is_dir() else [])
    )
    chosen = list(select(pages, args.limit, args.subsets.split(",")))
    start = time.perf_counter()
    with Pool(args.workers, initializer=warm_up) as pool:
        rows = pool.map(score_page, chosen, chunksize=4)
    elapsed = time.perf_counter() - start
    summary = summarise(rows)
    render(summary, Console(width=140))
    if args.dump:
        dump_texts(rows, args.dump)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "trafilatura": trafilatura.__version__,
        "workers": args.workers,
        "wall_seconds": elapsed,
        "summary": summary,
        "pages": [{k: v for k, v in r.items() if not k.endswith("_text")} for r in rows],
    }
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"{len(rows)} pages in {elapsed:.0f} s; results in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
