"""Write the rendered site: staged beside the output folder, then swapped in atomically."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from headwater.errors import OutputError

log = logging.getLogger(__name__)

AT_FDCWD = -100
RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class WriteReport:
    """What writing changed in the output folder."""

    written: int
    unchanged: int
    removed: int

    @property
    def changed(self) -> bool:
        return bool(self.written or self.removed)


def safe_relative(path: str) -> PurePosixPath:
    """A relative output path that cannot leave the output folder, or OutputError."""
    pure = PurePosixPath(path)
    if (
        not path
        or "\\" in path
        or "\x00" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise OutputError(f"refusing to write {path!r}: it would land outside the output folder")
    return pure


def write_site(files: Mapping[str, bytes | Path], out_dir: Path) -> WriteReport:
    """Replace out_dir's contents with files in one step; keep it untouched on any failure.

    Unchanged files are hard-linked from the live folder, so their bytes are not written
    again; when nothing changed at all, nothing is written and no swap happens.
    """
    targets = {safe_relative(name): data for name, data in files.items()}
    old = _existing_files(out_dir)
    unchanged = {p for p, data in targets.items() if _same(old.get(p), data)}
    removed = set(old) - set(targets)
    if out_dir.is_dir() and len(unchanged) == len(targets) and not removed:
        return WriteReport(written=0, unchanged=len(unchanged), removed=0)

    _sweep_leftovers(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")
    try:
        for relative, data in sorted(targets.items()):
            target = staging.joinpath(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            if relative in unchanged:
                _link_or_copy(old[relative], target)
            elif isinstance(data, Path):
                shutil.copyfile(data, target)
            else:
                target.write_bytes(data)
        _swap(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return WriteReport(
        written=len(targets) - len(unchanged), unchanged=len(unchanged), removed=len(removed)
    )


def _existing_files(out_dir: Path) -> dict[PurePosixPath, Path]:
    if not out_dir.is_dir():
        return {}
    return {
        PurePosixPath(p.relative_to(out_dir).as_posix()): p
        for p in out_dir.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


def _same(current: Path | None, data: bytes | Path) -> bool:
    if current is None:
        return False
    if isinstance(data, Path):
        if current.stat().st_size != data.stat().st_size:
            return False
        data = data.read_bytes()
    return current.stat().st_size == len(data) and current.read_bytes() == data


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _sweep_leftovers(out_dir: Path) -> None:
    """Remove staging folders a killed build left behind."""
    if not out_dir.parent.is_dir():
        out_dir.parent.mkdir(parents=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.staging-*"):
        log.info("removing %s, left by an interrupted build", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _swap(staging: Path, out_dir: Path) -> None:
    """Put staging in out_dir's place; afterwards staging holds the old site (or nothing)."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise OutputError(f"{out_dir} exists and is not a folder; not replacing it")
    if _exchange(staging, out_dir):
        return
    # No atomic exchange on this system: two renames, with a moment where out_dir is absent.
    parked = out_dir.with_name(f".{out_dir.name}.staging-old-{os.getpid()}")
    os.rename(out_dir, parked)
    os.rename(staging, out_dir)
    os.rename(parked, staging)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2(RENAME_EXCHANGE)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = renameat2(
        AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), ctypes.c_uint(RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
        return False
    raise OutputError(f"cannot swap {a} into {b}: {os.strerror(code)}")
