"""The webhook journal: changes and idempotency keys survive a reopen; a build's completion
removes exactly its rows; keys are forgotten by age and by count; one receiver per folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from headwater.changes import Change
from headwater.errors import ConfigError
from headwater.journal import (
    JOURNAL_NAME,
    Accepted,
    Duplicate,
    Journal,
    iso,
    journal_in,
    parse_iso,
)

PUBLISH = "ContentManagement.Entry.publish"
T0 = 1_800_000_000.0


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def change(entity: str = "abc", version: int = 1) -> Change:
    return Change("Entry", entity, PUBLISH, version, f"Title of {entity}")


def accepted(outcome: Accepted | Duplicate) -> Change:
    assert isinstance(outcome, Accepted)
    assert outcome.change is not None
    return outcome.change


def test_accepted_changes_get_row_numbers_and_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    journal = Journal(path, now=WallClock())
    first = accepted(journal.accept(change("a"), "key-1"))
    second = accepted(journal.accept(change("b"), None))
    assert (first.seq, second.seq) == (1, 2)
    assert first == Change("Entry", "a", PUBLISH, 1, "Title of a", seq=1)
    journal.close()

    reopened = Journal(path)
    pending = reopened.pending()
    assert [p.change for p in pending] == [first, second]
    assert pending[0].received_at == iso(T0) == "2027-01-15T08:00:00.000000Z"
    assert parse_iso(pending[0].received_at) == T0
    assert isinstance(reopened.accept(change("a", 2), "key-1"), Duplicate)
    assert len(reopened.pending()) == 2
    reopened.close()


def test_the_database_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    Journal(tmp_path / JOURNAL_NAME).close()
    with sqlite3.connect(tmp_path / JOURNAL_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_repeated_key_writes_nothing_and_an_ignored_topic_remembers_its_key() -> None:
    journal = Journal(":memory:")
    assert journal.accept(None, "ignored-1") == Accepted(None)
    assert journal.accept(change(), "ignored-1") == Duplicate("ignored-1")
    assert journal.pending() == []
    accepted(journal.accept(change(), "key-2"))
    assert journal.accept(change(), "key-2") == Duplicate("key-2")
    assert len(journal.pending()) == 1


def test_complete_deletes_exactly_the_rows_of_the_batch() -> None:
    journal = Journal(":memory:")
    batch = [accepted(journal.accept(change(f"e{n}"), None)) for n in range(3)]
    # The same change delivered again (another key) while the batch was building.
    late = accepted(journal.accept(change("e0"), "redelivery"))
    assert journal.complete(c.seq for c in batch if c.seq is not None) == 3
    assert [p.change for p in journal.pending()] == [late]
    assert journal.complete([]) == 0
    assert journal.complete([late.seq or 0, late.seq or 0]) == 1
    assert journal.pending() == []


def test_complete_handles_batches_beyond_the_parameter_limit() -> None:
    journal = Journal(":memory:")
    seqs = [accepted(journal.accept(change(f"e{n}"), None)).seq for n in range(1200)]
    assert journal.complete(s for s in seqs if s is not None) == 1200
    assert journal.summary().count == 0


def test_failed_attempts_are_counted_on_the_rows() -> None:
    clock = WallClock()
    journal = Journal(":memory:", now=clock)
    one = accepted(journal.accept(change("a"), None))
    two = accepted(journal.accept(change("b"), None))
    journal.note_attempt([one.seq or 0], "the build hook at hooks.test answered 503")
    journal.note_attempt([one.seq or 0, two.seq or 0], "could not connect")
    attempts = {p.change.id: (p.attempts, p.last_error) for p in journal.pending()}
    assert attempts == {"a": (2, "could not connect"), "b": (1, "could not connect")}


def test_summary_counts_all_and_lists_the_oldest_first() -> None:
    clock = WallClock()
    journal = Journal(":memory:", now=clock)
    for n in range(5):
        accepted(journal.accept(change(f"e{n}"), None))
        clock.now += 60
    summary = journal.summary(limit=2)
    assert summary.count == 5
    assert summary.oldest == iso(T0)
    assert [p.change.id for p in summary.first] == ["e0", "e1"]
    assert summary.first[0].as_dict() == {
        "kind": "Entry",
        "id": "e0",
        "topic": PUBLISH,
        "version": 1,
        "title": "Title of e0",
        "received_at": iso(T0),
        "attempts": 0,
    }


def test_keys_are_forgotten_after_their_age() -> None:
    clock = WallClock()
    journal = Journal(":memory:", now=clock, key_max_age=3600)
    accepted(journal.accept(change(), "old"))
    clock.now += 3599
    assert isinstance(journal.accept(change(), "old"), Duplicate)
    clock.now += 2
    accepted(journal.accept(change(), "new"))  # an accept prunes what is past its age
    accepted(journal.accept(change(), "old"))


def test_only_the_newest_keys_are_kept_by_count() -> None:
    clock = WallClock()
    journal = Journal(":memory:", now=clock, key_max_count=3)
    for n in range(5):
        assert journal.accept(None, f"k{n}") == Accepted(None)
        clock.now += 1
    for kept in ("k2", "k3", "k4"):
        assert isinstance(journal.accept(None, kept), Duplicate), kept
    assert isinstance(journal.accept(None, "k0"), Accepted)


def test_clear_forgets_every_pending_change() -> None:
    journal = Journal(":memory:")
    for n in range(3):
        accepted(journal.accept(change(f"e{n}"), f"key-{n}"))
    assert journal.clear() == 3
    assert journal.pending() == []
    assert isinstance(journal.accept(change(), "key-0"), Duplicate)


def test_a_second_receiver_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    with journal_in(tmp_path / "state") as journal:
        accepted(journal.accept(change(), None))
        with (
            pytest.raises(ConfigError, match="another headwater webhook receiver"),
            journal_in(tmp_path / "state"),
        ):
            pass
    with journal_in(tmp_path / "state") as again:
        assert len(again.pending()) == 1


def test_a_journal_from_a_newer_headwater_is_refused(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=7")
    with pytest.raises(ConfigError, match="newer headwater"):
        Journal(path)


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    path.write_bytes(b"not a database, just text " * 100)
    with pytest.raises(ConfigError, match="cannot open the webhook journal"):
        Journal(path)
