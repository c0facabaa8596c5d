"""Read a pip requirements file with its `-r`/`-c` includes, and hash them all.

The lock is valid only for the exact bytes of `requirements.txt` and of every file it
includes, so the hash covers each file as its path relative to the model folder plus
its bytes, in include order. pip itself does the resolving; this module only follows
includes and spots lines that would make pip run build code.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from carton_backend.errors import RequirementsError

_INCLUDE = re.compile(r"^(-r|-c|--requirement|--constraint)(=|\s+|(?=\S))(?P<path>\S.*)$")
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_EDITABLE = re.compile(r"^(-e|--editable)(=|\s+|(?=\S))")
_COMMENT = re.compile(r"(^|\s+)#")


@dataclass(frozen=True)
class RequirementsFile:
    """One file of the include tree, with the requirement lines it holds."""

    path: Path
    relpath: str
    data: bytes
    lines: tuple[str, ...]


def read_tree(root: Path, requirements: str) -> list[RequirementsFile]:
    """`requirements` (relative to `root`) and every file it includes, in include order.

    A file included twice is read (and hashed) twice, as pip reads it; a cycle is an error.
    """
    out: list[RequirementsFile] = []
    _read(root, root / requirements, out, stack=())
    return out


def requirements_hash(files: list[RequirementsFile]) -> str:
    """sha256 over each file's relative path and bytes, in include order.

    Each file contributes `<relpath>\\n<length>\\n<bytes>`, so no two trees collide by
    moving bytes from one file to the next.
    """
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relpath.encode("utf-8") + b"\n")
        digest.update(str(len(f.data)).encode("ascii") + b"\n")
        digest.update(f.data)
    return digest.hexdigest()


def build_code_lines(files: list[RequirementsFile]) -> list[tuple[RequirementsFile, str]]:
    """Requirement lines that pip could only satisfy by running build code: local folders,
    VCS URLs and direct links to sdists. `only-binary = true` refuses them up front,
    because pip builds these even under `--only-binary :all:`."""
    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    for f in files:
        for line in f.lines:
            spec = _EDITABLE.sub("", line, count=1)  # an editable is always built
            if spec.startswith("-"):
                continue
            spec = re.split(r"\s+--?[a-z]", spec, maxsplit=1)[0]
            try:
                target = Requirement(spec).url
            except InvalidRequirement:
                target = spec  # a bare path or URL, which pip also accepts
            if target and not target.split("#", 1)[0].split("?", 1)[0].endswith(".whl"):
                found.append((f, line))
    return found


def _read(root: Path, path: Path, out: list[RequirementsFile], stack: tuple[Path, ...]) -> None:
    resolved = path.resolve()
    relpath = _relative(root, path)
    shown = str(path)
    if resolved in stack:
        raise RequirementsError(shown, "includes itself (an -r/-c cycle)")
    if relpath.startswith("../") or relpath == "..":
        # The sdist and the archive carry the model folder only: a wheel built from the
        # sdist could not hash this file again.
        raise RequirementsError(str(stack[-1]) if stack else shown,
                                f"includes {shown}, which is outside the model folder {root}; "
                                "copy it into the folder")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        what = "requirements file not found"
        if not stack:
            what += "; create it (it may be empty) or set [tool.carton] requirements"
        raise RequirementsError(shown, what) from None
    except OSError as exc:
        raise RequirementsError(shown, f"cannot be read ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequirementsError(shown, "is not UTF-8 text") from None
    lines = tuple(_logical_lines(text))
    out.append(RequirementsFile(path=path, relpath=relpath, data=data, lines=lines))
    for line in lines:
        match = _INCLUDE.match(line)
        if not match:
            continue
        try:
            target = shlex.split(match["path"])[0] if match["path"] else ""
        except ValueError as exc:  # an unclosed quote
            raise RequirementsError(shown, f"cannot read the include {line!r} ({exc})") from None
        if _REMOTE.match(target):
            raise RequirementsError(shown, f"includes {target!r} from the network; carton "
                                           "hashes every include, so copy it into the folder")
        _read(root, path.parent / target, out, (*stack, resolved))


def _logical_lines(text: str) -> list[str]:
    """pip's line handling: join backslash continuations, drop comments and blanks.

    As in pip, a comment line never continues onto the next one, and it ends (as a
    comment) a continuation it follows."""
    joined: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        is_comment = _COMMENT.match(raw) is not None
        if raw.endswith("\\") and not is_comment:
            buffer += raw[:-1]
            continue
        joined.append(buffer + (" " + raw if is_comment else raw))
        buffer = ""
    if buffer:
        joined.append(buffer)
    out = []
    for line in joined:
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def _relative(root: Path, path: Path) -> str:
    return Path(os.path.normpath(os.path.relpath(path, root))).as_posix()
