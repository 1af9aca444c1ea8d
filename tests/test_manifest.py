"""The build manifest's store (manifest.py): what it keeps per output folder, that a build
writes only the rows it changed, and that a damaged or foreign file costs a full build."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from headwater.manifest import MANIFEST_SUFFIX, Manifest, load_manifest

ENGINE = "engine-1"


def site(n: int) -> dict[str, str]:
    return {f"blog/article-{i}/index.html": f"key-{i}" for i in range(n)}


def save_both(path: Path, live: Path, spare: Path, outputs: dict[str, str]) -> Manifest:
    """A manifest in which both folders hold outputs, saved (and still open)."""
    manifest = load_manifest(path, ENGINE)
    manifest.record(live, outputs)
    manifest.record(spare, dict(outputs))
    manifest.save([live, spare])
    return manifest


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    live, spare = tmp_path / "public", tmp_path / ".public.spare"
    live.mkdir()
    spare.mkdir()
    return tmp_path / "cache" / f"public-0123{MANIFEST_SUFFIX}", live, spare


def test_what_each_folder_holds_and_its_stamp_survive_a_reload(
    folders: tuple[Path, Path, Path],
) -> None:
    path, live, spare = folders
    manifest = load_manifest(path, ENGINE)
    assert manifest.outputs(live) is None
    now, before = site(50), site(50)
    now["blog/article-3/index.html"] = "key-3-edited"
    del now["blog/article-4/index.html"]
    now["blog/new/index.html"] = "key-new"
    manifest.record(live, now)
    manifest.record_stamp(live, ["inputs", 50, "token"])
    manifest.record(spare, before)
    manifest.save([live, spare])
    manifest.close()

    again = load_manifest(path, ENGINE)
    assert (again.size(live), again.size(spare)) == (len(now), len(before))  # counted in SQL
    assert again.outputs(live) == now
    assert again.outputs(spare) == before
    assert again.size(live) == len(now)
    assert again.stamp(live) == ["inputs", 50, "token"]
    assert again.stamp(spare) is None
    again.close()


def test_a_build_that_changes_a_few_pages_writes_a_few_rows(
    folders: tuple[Path, Path, Path],
) -> None:
    path, live, spare = folders
    save_both(path, live, spare, site(5000)).close()

    # As a build does: mark the spare unknown, write it, swap, record both folders.
    manifest = load_manifest(path, ENGINE)
    assert manifest.store is not None
    db = manifest.store.db
    before = manifest.outputs(live)
    assert before is not None
    manifest.record(spare, None)
    written = db.total_changes
    manifest.save([live, spare])
    assert db.total_changes - written <= 2
    now = dict(before)
    now["blog/article-7/index.html"] = "key-7-edited"
    del now["blog/article-9/index.html"]
    live.rename(live.with_name("swapping"))
    spare.rename(live)
    live.with_name("swapping").rename(spare)
    manifest.record(live, now)
    manifest.record(spare, before)
    manifest.record_stamp(live, ["inputs", 4999, "token"])
    written = db.total_changes
    manifest.save([live, spare])
    # base: one row changed, one deleted; the old folder: its two differing names; its stamp.
    assert db.total_changes - written <= 6
    manifest.close()

    again = load_manifest(path, ENGINE)
    assert again.outputs(live) == now
    assert again.outputs(spare) == before
    again.close()


def test_a_folder_marked_unknown_stays_unknown_after_a_crash(
    folders: tuple[Path, Path, Path],
) -> None:
    # A build marks the spare unknown (saved) before it changes a file of it, then dies.
    path, live, spare = folders
    manifest = save_both(path, live, spare, site(10))
    manifest.record(spare, None)
    manifest.save([live, spare])
    manifest.close()

    again = load_manifest(path, ENGINE)
    assert again.size(spare) is None
    assert again.outputs(live) == site(10)
    assert again.outputs(spare) is None
    again.close()


@pytest.mark.parametrize("damage", ["garbage", "other engine", "other format"])
def test_a_damaged_or_foreign_manifest_is_read_as_empty_and_written_anew(
    folders: tuple[Path, Path, Path], damage: str
) -> None:
    path, live, _ = folders
    manifest = load_manifest(path, ENGINE)
    manifest.record(live, site(3))
    manifest.save([live])
    manifest.close()
    engine = ENGINE
    if damage == "garbage":
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            if path.with_name(name).exists():
                path.with_name(name).write_bytes(b"not a database " * 200)
    elif damage == "other engine":
        engine = "engine-2"
    else:
        with sqlite3.connect(path) as db:
            db.execute("UPDATE meta SET value = '1' WHERE name = 'format'")

    again = load_manifest(path, engine)
    assert again.outputs(live) is None
    again.record(live, site(4))
    again.save([live])
    again.close()
    assert load_manifest(path, engine).outputs(live) == site(4)


def test_the_previous_versions_json_manifest_is_removed(
    folders: tuple[Path, Path, Path],
) -> None:
    path, live, _ = folders
    path.parent.mkdir(parents=True)
    legacy = path.with_name(path.name.removesuffix(MANIFEST_SUFFIX) + ".json")
    legacy.write_text(json.dumps({"format": 1, "folders": {}}))
    manifest = load_manifest(path, ENGINE)
    assert manifest.outputs(live) is None
    assert not legacy.exists()
    manifest.close()
