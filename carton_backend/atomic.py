"""Publish files atomically: write a temp file beside the target, fsync, then rename.

A reader (or a crash) sees either the old file or the whole new one, never a part.
Temp files are named `.carton-tmp-*` in the target's folder, on the same filesystem.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".carton-tmp-"


@contextlib.contextmanager
def atomic_writer(path: Path, *, executable: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file; on clean exit it replaces `path` (mode 0644, or 0755 when
    `executable`), on error it vanishes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755 if executable else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, atomically."""
    with atomic_writer(path) as f:
        f.write(data)


def copy_file(src: Path, dst: Path) -> None:
    """Copy `src` to `dst`, atomically."""
    with atomic_writer(dst) as out, src.open("rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
