"""Publish a folder by one rename: readers see all of it or nothing.

For folders any process may build the same way (an extracted model, a subprocess
prefix): no lock is taken; two racing builders each fill their own temporary folder,
one rename wins, the loser's copy is discarded. The completion marker is written before
the rename, so a folder without it is never trusted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from carton_hook.cache.layout import COMPLETE, is_published
from carton_hook.filesystem.atomic import rename


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
