"""Publish files atomically: write a temp file beside the target, fsync, then rename.
Both halves write through here (a lock, an archive, a plan); `cache.publish` publishes
folders with the same `rename`.

A reader (or a crash) sees either the old file or the whole new one, never a part.
Temp files are named `.carton-tmp-*` in the target's folder, on the same filesystem.
A writer holds an exclusive flock on its temp file while it writes; a temp file that
nobody holds and that has not changed for LEFTOVER_AGE seconds was left by a writer that
was killed, and the next write into that folder removes it (a killed `pack` left a
~40 MB `dist/.carton-tmp-*` per try). Without flock (Windows), only temp files a day
old are removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from carton_hook.system import lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

# Errors a rename may give for a moment (a virus scanner or indexer holding the folder,
# a network filesystem), worth a few short retries. ENOTEMPTY/EEXIST are not among them:
# a target that exists is a lost race or a bug, never something to overwrite.
_TRANSIENT = frozenset({errno.EBUSY, errno.EACCES, errno.EPERM, errno.EAGAIN})
RENAME_ATTEMPTS = 5


def rename(source: Path, target: Path) -> None:
    """`os.rename`, retried a few times on errors that pass (THREATS C4)."""
    for attempt in range(RENAME_ATTEMPTS):
        try:
            os.rename(source, target)
            return
        except OSError as exc:
            if exc.errno not in _TRANSIENT or attempt == RENAME_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2 ** attempt)


TEMP_PREFIX = ".carton-tmp-"
LEFTOVER_AGE = 10.0  # seconds: more than mkstemp-to-flock could ever take


@contextlib.contextmanager
def atomic_writer(path: Path, *, executable: bool = False,
                  durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a binary file; on clean exit it replaces `path` (mode 0644, or 0755 when
    `executable`), on error it vanishes. Not `durable`: no fsync, for a file that can be
    made again (a power cut may leave the old one, or none, never a part of the new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}-", dir=path.parent)
    lock(fd, wait=False)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def remove_leftovers(folder: Path) -> list[Path]:
    """Remove the temp files in `folder` that killed writers left; return them."""
    removed: list[Path] = []
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)]
    except OSError:
        return removed
    for candidate in candidates:
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue  # gone already, or a folder
        try:
            age = time.time() - os.fstat(fd).st_mtime
            locked = lock(fd, wait=False)
            if age > (LEFTOVER_AGE if locked is not None else 86400) and locked is not False:
                candidate.unlink()
                removed.append(candidate)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data`, atomically."""
    with atomic_writer(path, durable=durable) as f:
        f.write(data)


def copy_file(src: Path, dst: Path) -> None:
    """Copy `src` to `dst`, atomically."""
    with atomic_writer(dst) as out, src.open("rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (where the OS can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
