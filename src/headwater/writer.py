"""Publish the site: build the new version in a spare folder, then exchange it with the live one.

The output folder (`public/`) always holds one complete build. Beside it, `.public.spare/`
holds the build before; a new build brings the spare up to date — rewriting only what differs,
hard-linking what the live folder already has right — and then the two folders trade places in
one atomic `renameat2(RENAME_EXCHANGE)`. A build that fails or is killed changes only the spare,
and the cost of a build grows with what changed, not with the size of the site.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from headwater.errors import OutputError

log = logging.getLogger(__name__)

AT_FDCWD = -100
RENAME_EXCHANGE = 2


@dataclass(frozen=True)
class WriteReport:
    """What publishing changed in the output folder."""

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


def spare_folder(out_dir: Path) -> Path:
    return out_dir.with_name(f".{out_dir.name}.spare")


class Publisher:
    """Writes files into the spare folder and swaps it in.

    `live_files` and `spare_files` are what each folder is known to hold (from the build
    manifest); None means unknown, and the folder is then listed.
    """

    def __init__(self, out_dir: Path, spare_files: Iterable[str] | None = None) -> None:
        if out_dir.exists() and (not out_dir.is_dir() or out_dir.is_symlink()):
            raise OutputError(f"{out_dir} exists and is not a folder; not replacing it")
        self.live = out_dir
        self.spare = spare_folder(out_dir)
        if self.spare.is_symlink() or (self.spare.exists() and not self.spare.is_dir()):
            raise OutputError(f"{self.spare} is in the way; remove it")
        self.spare.mkdir(parents=True, exist_ok=True)
        self.spare_files = set(spare_files) if spare_files is not None else list_files(self.spare)
        self._folders: set[Path] = set()

    def put(self, name: str, data: bytes | Path) -> bool:
        """Make the spare's copy of name hold data; True if the bytes differ from the live copy."""
        relative = safe_relative(name)
        live = self.live.joinpath(relative)
        if _same(live, data):
            self.link_live(name)
            return False
        target = self.spare.joinpath(relative)
        self._make_parent(target)
        content = data.read_bytes() if isinstance(data, Path) else data
        self.spare_files.add(name)
        try:
            # Exclusive creation: never write through an existing file, which may be a hard
            # link into the live folder.
            with open(target, "xb") as file:
                file.write(content)
        except FileExistsError:
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(content)
            os.replace(temporary, target)
        return True

    def _make_parent(self, target: Path) -> None:
        parent = target.parent
        if parent not in self._folders:
            parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(parent)

    def link_live(self, name: str) -> None:
        """Make the spare's copy of name the live folder's file (a hard link, no bytes copied)."""
        relative = safe_relative(name)
        target, live = self.spare.joinpath(relative), self.live.joinpath(relative)
        self.spare_files.add(name)
        self._make_parent(target)
        try:
            os.link(live, target)  # the spare has no such file: one call, nothing to replace
            return
        except OSError:
            pass  # there is one, or links do not work here
        if target.exists() and os.path.samefile(target, live):
            return  # rename() between two links to one file would do nothing
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.unlink(missing_ok=True)
        try:
            os.link(live, temporary)
        except OSError:
            temporary.write_bytes(live.read_bytes())
        os.replace(temporary, target)

    def link_many(self, names: Iterable[str]) -> None:
        """link_live for many names, in plain string paths with one mkdir a folder: the build
        after a cold one links every file of the site (36,000 at 10,000 articles)."""
        live, spare = os.fspath(self.live), os.fspath(self.spare)
        made = {os.fspath(folder) for folder in self._folders}
        for name in names:
            safe_relative(name)
            self.spare_files.add(name)
            folder = os.path.join(spare, name.rpartition("/")[0])
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
                self._folders.add(Path(folder))
            try:
                os.link(os.path.join(live, name), os.path.join(spare, name))
            except OSError:
                self.link_live(name)  # a file in the way, or no hard links here

    def differs(self, name: str) -> bool:
        """True if the spare's copy of name is not the live folder's."""
        relative = safe_relative(name)
        spare, live = self.spare.joinpath(relative), self.live.joinpath(relative)
        try:
            if os.path.samefile(spare, live):
                return False
        except OSError:
            return True
        return not _same(live, spare)

    def remove_except(self, keep: set[str]) -> None:
        """Delete the spare's files that the new site does not have, and emptied folders."""
        for name in sorted(self.spare_files - keep):
            path = self.spare.joinpath(safe_relative(name))
            path.unlink(missing_ok=True)
            for parent in path.parents:
                if parent == self.spare:
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break
        self.spare_files &= keep

    def swap(self) -> None:
        """Make the spare live; the previous live folder becomes the spare."""
        if not self.live.exists():
            os.rename(self.spare, self.live)
            return
        if _exchange(self.spare, self.live):
            return
        # No atomic exchange on this file system: three renames, with a moment without a site.
        parked = self.live.with_name(f".{self.live.name}.parked")
        os.rename(self.live, parked)
        os.rename(self.spare, self.live)
        os.rename(parked, self.spare)


def publish(files: Mapping[str, bytes | Path], out_dir: Path) -> WriteReport:
    """Make out_dir hold exactly files, in one step; untouched on any failure."""
    for name in files:
        safe_relative(name)
    live = list_files(out_dir)
    publisher = Publisher(out_dir)
    written = sum(publisher.put(name, data) for name, data in sorted(files.items()))
    publisher.remove_except(set(files))
    removed = len(live - set(files))
    if written or removed or not out_dir.exists():
        publisher.swap()
    return WriteReport(written=written, unchanged=len(files) - written, removed=removed)


def list_files(folder: Path) -> set[str]:
    """Every file below folder, as relative POSIX paths."""
    found: set[str] = set()

    def walk(path: str, prefix: str) -> None:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, f"{prefix}{entry.name}/")
                elif entry.is_file(follow_symlinks=False):
                    found.add(prefix + entry.name)

    if folder.is_dir() and not folder.is_symlink():
        walk(os.fspath(folder), "")
    return found


def _same(current: Path, data: bytes | Path) -> bool:
    try:
        size = current.stat().st_size
    except OSError:
        return False
    if isinstance(data, Path):
        if size != data.stat().st_size:
            return False
        data = data.read_bytes()
    return size == len(data) and current.read_bytes() == data


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
    if code in (errno.ENOSYS, errno.EINVAL, errno.EPERM, errno.EOPNOTSUPP):
        return False
    raise OutputError(f"cannot swap {a} into {b}: {os.strerror(code)}")
