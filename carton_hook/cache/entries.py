"""The shared, content-addressed package cache: one installed wheel per `<sha256>/`.

Publishing follows one recipe: take the wheel's file lock, look again, fill a work
folder in `.tmp/` on the same filesystem, write the completion marker, rename the tree
into place. A reader trusts an entry only with its marker, so a process killed at any
point leaves nothing that is trusted; the lock (flock) dies with its holder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from carton_hook import system
from carton_hook.cache.layout import COMPLETE
from carton_hook.cache.publish import publish
from carton_hook.errors import CacheError, CartonError
from carton_hook.filesystem.atomic import fsync_dir, rename

LOCK_TIMEOUT = float(os.environ.get("CARTON_LOCK_TIMEOUT", "600"))
STALE_TMP_SECONDS = 24 * 3600



def is_complete(entry: Path, sha256: str) -> bool:
    try:
        marker = json.loads((entry / COMPLETE).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(marker, dict) and marker.get("format") == 1
            and marker.get("sha256") == sha256)


def ensure(root: Path, sha256: str, fill: Callable[[Path, Path], None]) -> Path:
    """The entry for `sha256`, filled by `fill(work_dir, tree)` if it is not there yet.

    `fill` must leave the installed tree at `tree` (inside `work_dir`).
    """
    entry = root / sha256
    if is_complete(entry, sha256):
        return entry
    try:
        return _fill_locked(root, sha256, fill)
    except CartonError:
        raise
    except OSError as exc:
        # A full disk, a read-only or foreign-owned cache: say where, and what to do.
        raise CacheError(f"cannot install {sha256} into the cache {root}: {exc}; free some "
                         "space, or point CARTON_HOME at a writable folder") from exc


@contextlib.contextmanager
def locked(root: Path, sha256: str) -> Iterator[None]:
    """Hold the file lock of `sha256`'s entry (flock: it dies with its holder)."""
    for sub in (".locks", ".tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    path = str(root / ".locks" / f"{sha256}.lock")
    if not system.HAVE_FLOCK:  # Windows: filelock's lock, under the same name
        with _filelock(path, root, sha256):
            yield
        return
    # flock itself, as filelock takes it on POSIX (the two exclude each other), without
    # filelock's import: 20-80 ms of every first run (docs/performance.md).
    fd = os.open(path, os.O_RDWR | os.O_CREAT | system.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        pause = 0.001
        while True:
            taken = system.lock(fd, wait=False)
            if taken:
                break
            if taken is None:
                raise OSError(errno.ENOLCK, f"{path}: this filesystem refuses file locks")
            if time.monotonic() >= deadline:
                raise _waited_too_long(root, sha256) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        yield
    finally:
        os.close(fd)  # which releases the lock


@contextlib.contextmanager
def _filelock(path: str, root: Path, sha256: str) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(path)
    try:
        lock.acquire(timeout=LOCK_TIMEOUT)
    except Timeout:
        raise _waited_too_long(root, sha256) from None
    try:
        yield
    finally:
        lock.release()


def _waited_too_long(root: Path, sha256: str) -> CacheError:
    return CacheError(f"waited {LOCK_TIMEOUT:.0f} s for another process to install "
                      f"{sha256} into {root}; is one stuck?")


def _fill_locked(root: Path, sha256: str, fill: Callable[[Path, Path], None]) -> Path:
    entry = root / sha256
    with locked(root, sha256):
        if is_complete(entry, sha256):
            return entry
        if entry.exists() or entry.is_symlink():
            # No valid marker: an interrupted or foreign entry. Move it aside, never trust it.
            _move_aside(root, entry)
        work = Path(tempfile.mkdtemp(prefix=f"{sha256[:12]}-", dir=root / ".tmp"))
        try:
            tree = work / "tree"
            fill(work, tree)
            publish(tree, entry, {"sha256": sha256}, durable=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        sweep(root / ".tmp")
        return entry


def remove(root: Path, sha256: str) -> bool:
    """Take the entry for `sha256` out of the cache (under its lock), e.g. one that
    `verify --cache` found edited; the next run installs it again. False if absent.
    Processes that already imported from it keep their open files."""
    entry = root / sha256
    if not (entry.exists() or entry.is_symlink()):
        return False
    with locked(root, sha256):
        if not (entry.exists() or entry.is_symlink()):
            return False
        _move_aside(root, entry)
        fsync_dir(root)
        return True


def _move_aside(root: Path, entry: Path) -> None:
    aside = Path(tempfile.mkdtemp(prefix="corrupt-", dir=root / ".tmp"))
    rename(entry, aside / "entry")
    shutil.rmtree(aside, ignore_errors=True)


def sweep(tmp: Path, cutoff: float | None = None) -> None:
    """Remove what interrupted runs left in `tmp` before `cutoff` (a time) and more than
    a day ago: a live install may be filling a younger one."""
    cutoff = min(cutoff or time.time(), time.time() - STALE_TMP_SECONDS)
    for child in tmp.iterdir() if tmp.is_dir() else []:
        with contextlib.suppress(OSError):
            if child.lstat().st_mtime < cutoff:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
