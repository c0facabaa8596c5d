"""Publish a folder by one rename: readers see all of it or nothing.

For folders any process may build the same way (an extracted model, a subprocess
prefix): no lock is taken; two racing builders each fill their own temporary folder,
one rename wins, the loser's copy is discarded. The completion marker is written before
the rename, so a folder without it is never trusted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Iterator
from pathlib import Path

from carton_hook.cache.layout import COMPLETE

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


def is_published(final: Path) -> bool:
    return (final / COMPLETE).is_file()


@contextlib.contextmanager
def publishing(final: Path) -> Iterator[Path]:
    """Yield an empty folder to fill; on clean exit it becomes `final` (unless another
    process published `final` first); on error, it is removed."""
    import json
    import shutil
    import tempfile

    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        tree = work / "tree"
        tree.mkdir()
        yield tree
        (tree / COMPLETE).write_text(json.dumps({"format": 1}))
        try:
            rename(tree, final)
        except OSError:
            if not is_published(final):
                raise  # not a lost race: something else is in the way
    finally:
        shutil.rmtree(work, ignore_errors=True)
