"""What a cold run empties (its caches, a fresh venv) is set aside, not deleted, until
the bench ends.

On a filesystem without a journal (the ext4 of the machine the figures come from has
none), the kernel's inode allocator skips, one by one, every inode freed in the last
minutes when it creates a file (`recently_deleted` in ext4's `find_inode_bit`, which
reads each one's table block). A bench that deletes a cold run's thousands of files
before the next cold run makes that run create each of its files over them: measured
here, 3,600 small files took 35-49 us each with nothing deleted in the last five
minutes, 281 us each right after 3,600 files were deleted, 780 us after 7,200. No user's
first run follows thousands of deletions, and it made each cold figure depend on what
the contender before it had deleted. Renaming a folder frees no inode.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

# What a whole bench sets aside (11.7-13.0 GB counted file by file, hard links each time,
# on Python 3.11 with torch), with room left.
ROOM_NEEDED = 15_000_000_000

_folder: Path | None = None
_count = itertools.count()


def start(folder: Path) -> None:
    """Set aside into `folder` (on the same filesystem as what is set aside) from now on."""
    global _folder
    folder.mkdir(parents=True, exist_ok=True)
    _folder = folder


def set_aside(path: Path) -> None:
    """Move `path` out of the way (it is gone from where it was), deleting nothing."""
    if not path.exists():
        return
    if _folder is not None:
        try:
            path.rename(_folder / f"{next(_count)}-{path.name}")
            return
        except OSError:
            pass  # another filesystem: deleted, as before
    shutil.rmtree(path, ignore_errors=True)


def empty() -> int:
    """Delete what was set aside, once nothing is timed any more; the bytes that freed
    (a venv's files hard-linked from a cache count once)."""
    if _folder is None or not _folder.exists():
        return 0
    before = shutil.disk_usage(_folder).free
    shutil.rmtree(_folder, ignore_errors=True)
    return max(0, shutil.disk_usage(_folder.parent).free - before)
