"""Choose the files of a model folder that go into the carton, its sdist and its wheel.

Exclude patterns follow `.gitignore` rules: a pattern with no `/` except a trailing
one matches at any depth (`__pycache__/`, `*.pyc`); any other pattern is anchored at the
model folder (`data/raw/**`); a trailing `/` matches folders only; `*` stays within one
path segment, `**` crosses them; `[...]` is a character class; a leading `!` takes a
path back in; a backslash makes the next character literal. The last pattern that
matches decides. The patterns come in this order: carton's defaults, the model folder's
own `.gitignore` (not applied to `.carton/`, carton's own folder), `[tool.carton]
exclude`. A folder holding `pyvenv.cfg` (a virtual environment, whatever its name) is
left out unless a `!` pattern names it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from carton_backend.config import DEFAULT_EXCLUDES, ModelConfig
from carton_backend.errors import BuildError
from carton_hook.formats.membernames import name_problem

# Added by frontends to the copy of the folder they build from (the sdist's PKG-INFO):
# never part of the model, or the archive would depend on the frontend.
FRONTEND_FILES = frozenset({"PKG-INFO"})
# carton's own folder (the lock, pack-time metadata, bundled wheels): the lock names what
# in it must be packed, whatever a .gitignore written for git says.
OWN_FOLDER = ".carton"


@dataclass(frozen=True)
class ModelFile:
    """A file of the model: its path relative to the folder (POSIX), and where it is."""

    relpath: str
    path: Path
    executable: bool


class Excluder:
    """Matches relative POSIX paths against exclude patterns; the last that matches wins."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._rules = [_compile(p) for p in patterns if p and p != "!"]

    def excluded(self, relpath: str, is_dir: bool) -> bool:
        return bool(self.verdict(relpath, is_dir))

    def verdict(self, relpath: str, is_dir: bool) -> bool | None:
        """True (excluded), False (taken back by a `!` pattern), or None (no pattern
        matches)."""
        found = None
        for rx, dir_only, negated in self._rules:
            if rx.match(relpath) and (is_dir or not dir_only):
                found = not negated
        return found


def gitignore_patterns(text: str) -> list[str]:
    """The patterns of a `.gitignore`: blank lines and `#` comments skipped, trailing
    spaces dropped (unless escaped)."""
    patterns = []
    for line in text.splitlines():
        if line.endswith(" ") and not line.endswith("\\ "):
            line = line.rstrip(" ")
        if line and not line.startswith("#"):
            patterns.append(line)
    return patterns


def _compile(pattern: str) -> tuple[re.Pattern[str], bool, bool]:
    negated = pattern.startswith("!")
    if negated:
        pattern = pattern[1:]
    dir_only = pattern.endswith("/") and not pattern.endswith("\\/")
    body = pattern[:-1] if dir_only else pattern
    anchored = "/" in body
    body = body.lstrip("/")
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
        elif body[i] == "\\" and i + 1 < len(body):
            rx += re.escape(body[i + 1])
            i += 2
        elif body[i] == "[" and "]" in body[i + 2:]:
            end = body.index("]", i + 2)
            inner = body[i + 1:end]
            negate = inner[:1] in ("!", "^")
            inner = inner[1:] if negate else inner
            rx += "[" + ("^/" if negate else "") + inner.replace("\\", "\\\\") + "]"
            i = end + 1
        else:
            rx += re.escape(body[i])
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(f"^{prefix}{rx}$", re.DOTALL), dir_only, negated


def model_files(config: ModelConfig) -> list[ModelFile]:
    """Every file to pack, sorted by relative path. Symlinked folders are not followed."""
    root = config.root
    layers = [Excluder(DEFAULT_EXCLUDES), _gitignore(root), Excluder(config.exclude)]

    def verdict(relpath: str, is_dir: bool) -> bool | None:
        found = None
        for i, layer in enumerate(layers):
            if i == 1 and (relpath + "/").startswith(OWN_FOLDER + "/"):
                continue  # the .gitignore is git's; .carton/ is carton's
            answer = layer.verdict(relpath, is_dir)
            if answer is not None:
                found = answer
        return found

    def kept_folder(folder: Path, relpath: str) -> bool:
        answer = verdict(relpath, True)
        if answer is not None:
            return not answer
        return not (folder / "pyvenv.cfg").is_file()

    found: list[ModelFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        dirnames[:] = sorted(
            d for d in dirnames
            if not (base / d).is_symlink() and kept_folder(base / d, prefix + d)
        )
        for name in sorted(filenames):
            rel = prefix + name
            if verdict(rel, False) or (not prefix and name in FRONTEND_FILES):
                continue
            path = base / name
            if not path.is_file():
                continue  # a dangling link, a socket or a FIFO
            _check_name(rel, root)
            found.append(ModelFile(rel, path, bool(path.stat().st_mode & 0o111)))
    return sorted(found, key=lambda f: f.relpath)


def _gitignore(root: Path) -> Excluder:
    """The patterns of the model folder's own `.gitignore` (none if it has none)."""
    try:
        text = (root / ".gitignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Excluder(())
    return Excluder(gitignore_patterns(text))


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
