"""Checking a snapshot into content: each checking process reads and checks a batch of entries
at a time, and what its reads reported reaches the build once."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest
from support import REPO, make_project, validate

from headwater import content as content_module
from headwater.model import Problem, RawEntry, Snapshot
from headwater.schema import load_model
from headwater.sources.local import load_snapshot


class CountingReader:
    """The snapshot's reader, and the ids each read in this process asked for."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.inner = snapshot.reader
        self.reads: list[list[str]] = []

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        self.reads.append(list(ids))
        return self.inner.read(ids)


class FailingReader:
    """A reader that cannot read one entry, and says why as the protocol asks: in the
    snapshot's problems."""

    def __init__(self, snapshot: Snapshot, unreadable: str) -> None:
        self.snapshot = snapshot
        self.inner = snapshot.reader
        self.unreadable = unreadable

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        found = self.inner.read([i for i in ids if i != self.unreadable])
        if self.unreadable in ids:
            problem = Problem(self.unreadable, "", "readable", "cannot read the file")
            self.snapshot.problems.append(problem)
        return found


Summary = list[tuple[str, str | None, str]]


def checked(project: Path) -> tuple[Summary, list[list[str]]]:
    snapshot = load_snapshot(project / "content")
    reader = CountingReader(snapshot)
    snapshot.reader = reader
    found, problems = validate(snapshot, load_model(project / "cms_schema"))
    assert problems == [] and found is not None
    entries = [(e.id, e.url, repr(sorted(e.fields.items()))) for e in found.entries]
    return entries, reader.reads


def test_entries_are_read_and_checked_a_batch_at_a_time_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "site")
    whole, reads = checked(project)
    assert len(reads) == 1 and len(reads[0]) == len(whole) > 3

    monkeypatch.setattr(content_module, "READ_BATCH", 2)
    batched, reads = checked(project)
    assert batched == whole
    assert all(len(ids) <= 2 for ids in reads) and len(reads) > 1
    assert sorted(i for ids in reads for i in ids) == sorted(i for i, _, _ in whole)

    # Forked checking processes read their own batches: this process reads only its share.
    monkeypatch.setattr(content_module, "PARALLEL_FROM", 1)
    forked, reads = checked(project)
    assert forked == whole
    assert 0 < len([i for ids in reads for i in ids]) < len(whole)


def test_the_repository_content_checks_the_same_in_forked_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "site", REPO / "content")
    whole, _ = checked(project)
    monkeypatch.setattr(content_module, "READ_BATCH", 7)
    monkeypatch.setattr(content_module, "PARALLEL_FROM", 1)
    batched, _ = checked(project)
    assert batched == whole


@pytest.mark.parametrize("parallel_from", [1, 1000], ids=["forked", "in-process"])
@pytest.mark.parametrize(
    # One batch an entry, shared out in turn: the first is read here, the second in a fork.
    "unreadable",
    ["article/first-article", "author/dr-test"],
)
def test_a_problem_a_read_reports_reaches_the_build_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_from: int, unreadable: str
) -> None:
    monkeypatch.setattr(content_module, "READ_BATCH", 1)
    monkeypatch.setattr(content_module, "PARALLEL_FROM", parallel_from)
    project = make_project(tmp_path / "site")
    snapshot = load_snapshot(project / "content")
    snapshot.reader = FailingReader(snapshot, unreadable)
    _, problems = validate(snapshot, load_model(project / "cms_schema"))
    assert [p.origin for p in problems if p.rule == "readable"] == [unreadable]
