"""Publish a folder by one rename: readers see all of it or nothing.

The one recipe for every folder of the cache: it is filled under a temporary name, its
completion marker is written last, then one rename makes it the folder readers look for;
a folder without the marker is never trusted. Package entries are published under their
entry lock (cache/entries.py); folders any process may build the same way (an extracted
model, a subprocess prefix) without one: two racing builders each fill their own
temporary folder, one rename wins, the loser's copy is discarded.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from carton_hook.cache.layout import COMPLETE, is_published
from carton_hook.filesystem.atomic import fsync_dir, rename


def publish(tree: Path, final: Path, marker: dict[str, object] | None = None, *,
            durable: bool = False) -> None:
    """Make the filled folder `tree` the folder `final`: its completion marker (with
    `marker` in it) written last, fsynced with the rename when `durable`, then one
    rename. A `final` another process published first wins; `tree` is then the caller's
    to remove."""
    import json

    with open(tree / COMPLETE, "x") as f:
        json.dump({"format": 1, **(marker or {})}, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    try:
        rename(tree, final)
    except OSError:
        if not is_published(final):
            raise  # not a lost race: something else is in the way
        return
    if durable:
        fsync_dir(final.parent)


@contextlib.contextmanager
def publishing(final: Path) -> Iterator[Path]:
    """Yield an empty folder to fill; on clean exit it becomes `final` (unless another
    process published `final` first); on error, it is removed."""
    import shutil
    import tempfile

    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        tree = work / "tree"
        tree.mkdir()
        yield tree
        publish(tree, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
