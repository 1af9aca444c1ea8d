"""Deep digests (manifest.Fingerprinter): what a page's key is made of, and when an earlier
build's digest is taken without reading the entry again."""

from __future__ import annotations

from collections.abc import Callable

from headwater.manifest import Fingerprinter, entry_version
from headwater.model import Entry


def entry(entry_id: str, digest: str, links: tuple[Entry, ...] = ()) -> Entry:
    made = Entry(entry_id, "article", entry_id, digest, f"/blog/{entry_id}/")
    made._complete({"title": entry_id}, links)
    return made


def lazy(
    entry_id: str, digest: str, loads: list[str], links: Callable[[], tuple[Entry, ...]]
) -> Entry:
    def load(made: Entry) -> None:
        loads.append(entry_id)
        made._complete({"title": entry_id}, links())

    return Entry(entry_id, "article", entry_id, digest, f"/blog/{entry_id}/", load=load)


def test_a_known_deep_digest_is_taken_while_its_entry_and_links_are_the_same_versions() -> None:
    author = entry("author", "a1")
    article = entry("post", "p1", (author,))
    first = Fingerprinter("base")
    digest = first.deep(article)
    known = dict(first.fresh)
    assert set(known) == {"post"}  # the author is read for it, not digested deep
    versions = {"post": ("p1", "/blog/post/"), "author": ("a1", "/blog/author/")}

    def version_of(entry_id: str) -> str | None:
        digest_, url = versions[entry_id]
        return entry_version(entry_id, digest_, url)

    # The same versions: the digest is taken as it was, and the entry's fields never read.
    loads: list[str] = []
    again = lazy("post", "p1", loads, lambda: (author,))
    second = Fingerprinter("base", known=known, version_of=version_of)
    assert second.deep(again) == digest and loads == [] and second.fresh == {}

    # The author it links to is a new version: worked out again, and different.
    versions["author"] = ("a2", "/blog/author/")
    new_author = entry("author", "a2")
    again = lazy("post", "p1", loads, lambda: (new_author,))
    third = Fingerprinter("base", known=known, version_of=version_of)
    assert third.deep(again) != digest and loads == ["post"]
    assert third.fresh["post"][0] == third.deep(again)

    # The entry itself is a new version: worked out again.
    changed = entry("post", "p2", (author,))
    assert Fingerprinter("base", known=known, version_of=version_of).deep(changed) != digest
