"""The `cache` commands: list what `CARTON_HOME` holds, prune what was not used lately,
clear it; never taking out what a running process uses (`inuse`).

What is listed and removed: installed wheels (`pythonpackages/py3X/<sha256>`, for every
Python version), extracted models (`models/`), the runtimes that executable cartons
extract (`runtime/py3X/<key>`), subprocess prefixes (`envs/`) and plans (`plans/`). A
folder is removed by renaming it aside under the same locks that publish it, then
deleting the copy, so no reader ever sees half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from carton_hook.cache.entries import locked, sweep
from carton_hook.cache.inuse import take
from carton_hook.cache.layout import COMPLETE, PLAN_SUFFIX, models_dir, plans_dir

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PYTHON_DIR = re.compile(r"py(\d)(\d+)")


@dataclass(frozen=True)
class Entry:
    """One thing in the cache."""

    kind: str  # "package", "model", "runtime", "env" or "plan"
    path: Path
    label: str  # what it is: "requests 2.32.3 (py3.11)", a model's name, ...
    size: int
    last_used: float  # seconds since the epoch: the last stamp of a process using it
    complete: bool = True  # False: a leftover without its marker (never trusted)


@dataclass
class Removal:
    """What `prune` or `clear` did."""

    removed: list[Entry]
    in_use: list[Entry]

    @property
    def freed(self) -> int:
        return sum(e.size for e in self.removed)


def entries(home: Path) -> list[Entry]:
    """Everything in the cache at `home`, packages first, each kind sorted by path."""
    found: list[Entry] = []
    for python, entry in _by_python(home / "pythonpackages"):
        found.append(_entry("package", entry, f"{_project(entry)} ({python})"))
    for folder in sorted(_dirs(Path(models_dir(home)))):
        if not folder.name.startswith(".tmp-"):
            found.append(_entry("model", folder, _model_label(folder)))
    for python, folder in _by_python(home / "runtime"):
        found.append(_entry("runtime", folder, f"{folder.name[:12]} ({python})"))
    for folder in sorted(_dirs(home / "envs")):
        if not folder.name.startswith(".tmp-"):
            found.append(_entry("env", folder, folder.name))
    plans = Path(plans_dir(home))
    for plan in sorted(plans.glob(f"*{PLAN_SUFFIX}")) if plans.is_dir() else []:
        with contextlib.suppress(OSError):
            stat = plan.stat()
            found.append(Entry("plan", plan, plan.stem, stat.st_size, stat.st_mtime))
    return found


def prune(home: Path, older_than: float, now: float | None = None) -> Removal:
    """Remove what no process has used for `older_than` seconds and none uses now."""
    cutoff = (time.time() if now is None else now) - older_than
    done = Removal([], [])
    listed = entries(home)
    for entry in listed:
        if entry.kind == "plan" or (entry.complete and entry.last_used > cutoff):
            continue
        if _remove(home, entry):
            done.removed.append(entry)
        else:
            done.in_use.append(entry)
    # A plan is cheap to make again, and worth keeping while its prefix is, or while a
    # process holds its lock (making it, or about to read what its worker wrote).
    for entry in listed:
        if (entry.kind == "plan" and entry.last_used <= cutoff
                and not (home / "envs" / entry.path.stem).exists()):
            if not _plan_unlocked(entry.path):
                done.in_use.append(entry)
                continue
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()
                done.removed.append(entry)
    for tmp in (home / "pythonpackages").glob("py*/.tmp"):
        sweep(tmp, cutoff)
    return done


def _plan_unlocked(plan: Path) -> bool:
    """Whether no process holds the lock of making `plan` (plan.get_plan's)."""
    from carton_hook.system import O_CLOEXEC, lock

    try:
        fd = os.open(f"{plan}.lock", os.O_RDONLY | O_CLOEXEC)
    except OSError:
        return True  # never locked here
    try:
        return lock(fd, wait=False) is True  # not where it cannot tell
    finally:
        os.close(fd)


def clear(home: Path) -> Removal:
    """Remove everything that no process uses now."""
    return prune(home, older_than=-1.0)


def _remove(home: Path, entry: Entry) -> bool:
    """Take `entry` out if no process uses it: under the lock that publishes it (for a
    package), and the exclusive lock of its marker."""
    if entry.kind == "package":
        with locked(entry.path.parent, entry.path.name):
            return _remove_unused(entry.path, entry.path.parent / ".tmp")
    return _remove_unused(entry.path, entry.path.parent)


def _remove_unused(folder: Path, aside_in: Path) -> bool:
    fd = take(str(folder))
    if fd is None and (folder / COMPLETE).exists():
        return False  # a process holds it
    try:
        aside = Path(tempfile.mkdtemp(prefix=".tmp-removed-", dir=aside_in))
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another prune
            os.rename(folder, aside / "entry")
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        if fd is not None:
            os.close(fd)
    return True


def _by_python(root: Path) -> Iterator[tuple[str, Path]]:
    """("py3.11", folder) for each `<sha256>` folder in `root/py3X/`, sorted."""
    for pydir in sorted(_dirs(root)):
        version = _PYTHON_DIR.fullmatch(pydir.name)
        if version is not None:
            for folder in sorted(_dirs(pydir)):
                if _SHA256.fullmatch(folder.name):
                    yield f"py{version[1]}.{version[2]}", folder


def _entry(kind: str, folder: Path, label: str) -> Entry:
    marker = folder / COMPLETE
    try:
        last_used, complete = marker.stat().st_mtime, True
    except OSError:
        last_used, complete = folder.lstat().st_mtime, False
    return Entry(kind, folder, label, _size(folder), last_used, complete)


def _project(entry: Path) -> str:
    """"name version" from the entry's .dist-info folder."""
    for child in sorted(entry.glob("*.dist-info")):
        name, _, version = child.name[:-len(".dist-info")].partition("-")
        return f"{name} {version}"
    return "(unknown)"


def _model_label(folder: Path) -> str:
    """"name version" from the extracted model's pyproject.toml (read loosely: a label)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
        fields = dict(re.findall(r'^(name|version)\s*=\s*"([^"]*)"', text, re.MULTILINE))
        if fields:
            return f"{fields.get('name', '?')} {fields.get('version', '?')}"
    return folder.name[:12]


def _size(folder: Path) -> int:
    total = 0
    stack = [str(folder)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as it:
            for child in it:
                if child.is_dir(follow_symlinks=False):
                    stack.append(child.path)
                else:
                    with contextlib.suppress(OSError):
                        total += child.stat(follow_symlinks=False).st_size
    return total


def _dirs(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                yield child


