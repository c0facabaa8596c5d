"""Choose the files of a model folder that go into the carton, its sdist and its wheel.

Exclude patterns follow `.gitignore` rules: a pattern with no `/` except a trailing
one matches at any depth (`__pycache__/`, `*.pyc`); any other pattern is anchored at the
model folder (`data/raw/**`); a trailing `/` matches folders only; `*` stays within one
path segment, `**` crosses them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from carton_hook.membernames import name_problem

from .config import DEFAULT_EXCLUDES, ModelConfig
from .errors import BuildError

# Added by frontends to the copy of the folder they build from (the sdist's PKG-INFO):
# never part of the model, or the archive would depend on the frontend.
FRONTEND_FILES = frozenset({"PKG-INFO"})


@dataclass(frozen=True)
class ModelFile:
    """A file of the model: its path relative to the folder (POSIX), and where it is."""

    relpath: str
    path: Path
    executable: bool


class Excluder:
    """Matches relative POSIX paths against exclude patterns."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._rules = [_compile(p) for p in patterns]

    def excluded(self, relpath: str, is_dir: bool) -> bool:
        return any(rx.match(relpath) and (is_dir or not dir_only)
                   for rx, dir_only in self._rules)


def _compile(pattern: str) -> tuple[re.Pattern[str], bool]:
    dir_only = pattern.endswith("/")
    body = pattern.strip("/")
    anchored = "/" in body or pattern.startswith("/")
    rx = ""
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            rx += "(?:.*/)?"
            i += 3
        elif body.startswith("**", i):
            rx += ".*"
            i += 2
        elif body[i] == "*":
            rx += "[^/]*"
            i += 1
        elif body[i] == "?":
            rx += "[^/]"
            i += 1
        else:
            rx += re.escape(body[i])
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{rx}$", re.DOTALL), dir_only


def model_files(config: ModelConfig) -> list[ModelFile]:
    """Every file to pack, sorted by relative path. Symlinked folders are not followed."""
    excluder = Excluder((*DEFAULT_EXCLUDES, *config.exclude))
    root = config.root
    found: list[ModelFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(
            d for d in dirnames
            if not (base / d).is_symlink() and not excluder.excluded(prefix + d, True)
        )
        for name in sorted(filenames):
            rel = prefix + name
            if excluder.excluded(rel, False) or (not prefix and name in FRONTEND_FILES):
                continue
            path = base / name
            if not path.is_file():
                continue  # a dangling link, a socket or a FIFO
            _check_name(rel, root)
            found.append(ModelFile(rel, path, bool(path.stat().st_mode & 0o111)))
    return sorted(found, key=lambda f: f.relpath)


def _check_name(relpath: str, root: Path) -> None:
    """The archive's readers apply the wheel member-name rules to model files; refuse
    here, at pack time, what they would refuse."""
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        raise BuildError(f"{root}: a file name is not valid UTF-8 ({relpath!r}); "
                         "rename it or exclude it") from None
    problem = name_problem(relpath)
    if problem:
        raise BuildError(f"{root / relpath}: this file name cannot be packed ({problem}); "
                         "rename it or exclude it")
