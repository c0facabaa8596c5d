"""The pack-time metadata of a model extracted from a `.carton`, in one file.

A `.carton` carries each locked wheel's metadata (METADATA, RECORD, entry_points.txt,
licenses) as `model/.carton/dist-info/<sha256>/<name>.dist-info/...`. Extracted as a
tree, that cost a first run's model process one file and one or two folders per member,
on the path to its plan: ~17 ms for the 130 members of a 35-wheel lock, most of what a
model importing one of those packages waited for beyond the same model locking it
alone (docs/performance.md). Extraction writes them into one file instead, `PACK`, and
whatever reads that metadata (importlib.metadata, pkg_resources, console scripts,
selection) asks `read_metadata` for the path the tree would have had.

The file, offsets in bytes from its start:

    carton-dist-info-pack 1\\n
    each member's bytes, one after another
    "<offset> <size> <path>\\n" for each member, path below .carton/dist-info/
    the offset of the first of those lines, 20 digits, then \\n

The index comes last so that members are written as they are read and checked. The
file is written inside the model folder before it is published, and never changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import BinaryIO

from carton_hook.errors import CacheError

PACK = ".carton/dist-info.pack"
PACKED_DIR = ".carton/dist-info"  # the tree the pack holds (formats/lockfile.DIST_INFO_DIR)
_MAGIC = b"carton-dist-info-pack 1\n"
_TRAILER = 21  # 20 digits and a newline
_DIGITS = frozenset("0123456789")


class PackWriter:
    """Writes a pack to `file` (open for binary writing, empty): `add` each member,
    then `finish`."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._offset = len(_MAGIC)
        self._index: list[bytes] = []
        file.write(_MAGIC)

    def add(self, path: str, chunks: Iterable[bytes]) -> None:
        """Member `path` (below .carton/dist-info/), its bytes in `chunks`."""
        if "\n" in path or not path or path.startswith("/"):
            raise ValueError(f"{path!r} cannot be a member of a metadata pack")
        size = 0
        for chunk in chunks:
            self._file.write(chunk)
            size += len(chunk)
        self._index.append(f"{self._offset} {size} {path}\n".encode())
        self._offset += size

    def finish(self) -> None:
        self._file.writelines(self._index)
        self._file.write(b"%020d\n" % self._offset)


class Pack:
    """A pack, its index read: each member's bytes and the folders it holds."""

    def __init__(self, path: str, index: dict[str, tuple[int, int]]) -> None:
        self.path = path
        self._index = index
        self._children: dict[str, set[str]] | None = None  # folder -> folders in it

    def read(self, relpath: str) -> bytes:
        """The bytes of member `relpath`; FileNotFoundError if the pack has none."""
        found = self._index.get(relpath)
        if found is None:
            raise FileNotFoundError(f"{self.path}: no {relpath}")
        offset, size = found
        # A file of its own for each read: a forked child and its parent never move
        # each other's offset (as they would in one descriptor they share).
        with open(self.path, "rb") as file:
            file.seek(offset)
            data = file.read(size)
        if len(data) != size:
            raise _damaged(self.path, f"{relpath} is cut short")
        return data

    def is_file(self, relpath: str) -> bool:
        return relpath in self._index

    def listdir(self, relpath: str) -> list[str]:
        """The names in folder `relpath` ("" for the top), files and folders, sorted;
        none if there is no such folder."""
        prefix = f"{relpath}/" if relpath else ""
        files = {p[len(prefix):] for p in self._index
                 if p.startswith(prefix) and "/" not in p[len(prefix):]}
        return sorted(files | set(self._folders().get(relpath, ())))

    def folders(self, relpath: str) -> list[str]:
        """The names of the folders in folder `relpath`, sorted."""
        return sorted(self._folders().get(relpath, ()))

    def _folders(self) -> dict[str, set[str]]:
        if self._children is None:
            children: dict[str, set[str]] = {}
            for member in self._index:
                parts = member.split("/")[:-1]
                for i in range(len(parts)):
                    children.setdefault("/".join(parts[:i]), set()).add(parts[i])
            self._children = children
        return self._children


_opened: dict[str, Pack] = {}


def open_pack(path: str) -> Pack | None:
    """The pack at `path`, its index read once per process; None if there is no file
    there (a model folder an earlier carton extracted as a tree). CacheError if it is
    not a whole pack."""
    found = _opened.get(path)
    if found is not None:
        return found
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        return None  # not remembered: the model may be extracted again, as a pack
    except OSError as exc:
        raise CacheError(f"{path}: cannot read: {exc}") from exc
    try:
        head = file.read(len(_MAGIC))
        size = file.seek(0, os.SEEK_END)
        file.seek(max(size - _TRAILER, 0))
        tail = file.read(_TRAILER)
        if head != _MAGIC or len(tail) != _TRAILER or not _DIGITS.issuperset(
                tail[:-1].decode("latin-1")) or tail[-1:] != b"\n":
            raise _damaged(path, "not a metadata pack, or cut short")
        start = int(tail)
        if not len(_MAGIC) <= start <= size - _TRAILER:
            raise _damaged(path, "its index is out of place")
        file.seek(start)
        raw = file.read(size - _TRAILER - start)
    except OSError as exc:
        if isinstance(exc, CacheError):
            raise
        raise CacheError(f"{path}: cannot read: {exc}") from exc
    finally:
        file.close()
    pack = Pack(path, _parse_index(path, raw, start))
    _opened[path] = pack
    return pack


def _parse_index(path: str, raw: bytes, end: int) -> dict[str, tuple[int, int]]:
    index: dict[str, tuple[int, int]] = {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _damaged(path, "its index is not UTF-8") from None
    if text and not text.endswith("\n"):
        raise _damaged(path, "its index is cut short")
    for line in text[:-1].split("\n") if text else ():
        offset, size, relpath = [*line.split(" ", 2), "", ""][:3]
        if not (_DIGITS.issuperset(offset) and _DIGITS.issuperset(size)
                and offset and size and relpath):
            raise _damaged(path, f"index line {line!r} is not '<offset> <size> <path>'")
        if int(offset) < len(_MAGIC) or int(offset) + int(size) > end:
            raise _damaged(path, f"{relpath} lies outside the pack's members")
        index[relpath] = (int(offset), int(size))
    return index


def _damaged(path: str, what: str) -> CacheError:
    return CacheError(f"{path}: damaged ({what}); `python -m carton_hook cache clear` "
                      "removes it, and the next run extracts the model again")


def read_metadata(path: str, pack: str | None) -> bytes:
    """The bytes of `path`, a file of a model's pack-time metadata
    (`<model>/.carton/dist-info/...`): out of `pack` where the model's metadata is
    packed and the pack is there, else from disk. FileNotFoundError if absent."""
    located = _locate(path, pack)
    if located is None:
        with open(path, "rb") as file:
            return file.read()
    found, relpath = located
    return found.read(relpath)


def metadata_kind(path: str, pack: str | None) -> str | None:
    """"file" or "folder" for what `path` of a model's pack-time metadata is, or None
    if there is nothing there (read as `read_metadata` reads)."""
    try:
        located = _locate(path, pack)
    except FileNotFoundError:
        return None
    if located is None:
        return "folder" if os.path.isdir(path) else "file" if os.path.isfile(path) else None
    found, relpath = located
    if found.is_file(relpath):
        return "file"
    return "folder" if relpath == "" or found.listdir(relpath) else None


def list_metadata(path: str, pack: str | None) -> list[str]:
    """The names in folder `path` of a model's pack-time metadata, sorted; none if there
    is no such folder."""
    try:
        located = _locate(path, pack)
        if located is None:
            return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found, relpath = located
    return found.listdir(relpath)


def metadata_folders(path: str, pack: str | None) -> list[str]:
    """The names of the folders in folder `path` of a model's pack-time metadata,
    sorted; none if there is no such folder."""
    try:
        located = _locate(path, pack)
        if located is None:
            return sorted(e.name for e in os.scandir(path) if e.is_dir())
    except OSError:  # FileNotFoundError, NotADirectoryError
        return []
    found, relpath = located
    return found.folders(relpath)


def _locate(path: str, pack: str | None) -> tuple[Pack, str] | None:
    """Where `path` (of the tree a pack holds) is read: the pack and the name it has
    there, or None for the tree on disk (no pack given, or none there).
    FileNotFoundError for a path outside that tree."""
    found = open_pack(pack) if pack else None
    return None if found is None else (found, packed_path(path, found.path))


def packed_path(path: str, pack: str) -> str:
    """`path` (a file or folder of the tree a pack holds) as the pack names it."""
    root = os.path.join(os.path.dirname(os.path.dirname(pack)), PACKED_DIR)
    relpath = os.path.relpath(path, root)
    if relpath == ".":
        return ""
    if relpath == ".." or relpath.startswith(".." + os.sep):
        raise FileNotFoundError(f"{path} is not in {pack}")
    return relpath.replace(os.sep, "/")
