"""Checking a snapshot into content: entries read and checked a batch at a time."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import pytest
from support import REPO, make_project, validate

from headwater import content as content_module
from headwater.model import RawEntry, Snapshot
from headwater.schema import load_model
from headwater.sources.local import load_snapshot


class CountingReader:
    """The snapshot's reader, and the ids each read asked for."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.inner = snapshot.reader
        self.reads: list[list[str]] = []

    def read(self, ids: Collection[str]) -> dict[str, RawEntry]:
        self.reads.append(list(ids))
        return self.inner.read(ids)


def checked(project: Path) -> tuple[list[tuple[str, str | None, str]], list[list[str]]]:
    snapshot = load_snapshot(project / "content")
    reader = CountingReader(snapshot)
    snapshot.reader = reader
    found, problems = validate(snapshot, load_model(project / "cms_schema"))
    assert problems == [] and found is not None
    entries = [(e.id, e.url, repr(sorted(e.fields.items()))) for e in found.entries]
    return entries, reader.reads


@pytest.mark.parametrize("parallel_from", [1, 1000], ids=["forked", "in-process"])
def test_entries_are_read_and_checked_a_batch_at_a_time_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel_from: int
) -> None:
    project = make_project(tmp_path / "site")
    whole, reads = checked(project)
    assert len(reads) == 1 and len(reads[0]) == len(whole) > 3

    monkeypatch.setattr(content_module, "READ_BATCH", 2)
    monkeypatch.setattr(content_module, "PARALLEL_FROM", parallel_from)
    batched, reads = checked(project)
    assert batched == whole
    assert all(len(ids) <= 2 for ids in reads)
    assert sorted(i for ids in reads for i in ids) == sorted(i for i, _, _ in whole)


def test_the_repository_content_checks_the_same_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "site", REPO / "content")
    whole, _ = checked(project)
    monkeypatch.setattr(content_module, "READ_BATCH", 7)
    batched, reads = checked(project)
    assert batched == whole and len(reads) > 1
