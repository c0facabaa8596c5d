"""One policy for the members of every zip archive carton unpacks: wheels and cartons.

An archive passes only if every member name is safe on every OS and marked UTF-8 when it
is not ASCII; no two members collide (the same name twice, names that differ only in
case or Unicode normalisation, a file and a folder of one name); every member is a
regular file or a folder (no symlink, device or FIFO), not encrypted and stored or
compressed by a method zipfile reads; and the declared sizes stay within the limits.
zipfile then enforces the declared sizes and CRCs while reading, so checking them
before anything is written stops a bomb before it fills a disk. Nothing is sanitised:
one bad member refuses the whole archive.

The limits have defaults no real wheel or model meets, and can be raised:
`CARTON_MAX_MEMBERS` (members per archive, default 200,000), `CARTON_MAX_UNPACKED`
(bytes an archive may unpack to whatever its size, default 512 MiB) and
`CARTON_MAX_RATIO` (beyond that, at most this many times the archive's own size,
default 20: a model's weights are stored, not compressed, so they count about once).
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterable
from typing import NamedTuple

from carton_hook.errors import UnsafeMember
from carton_hook.formats.membernames import name_problem

SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                               zipfile.ZIP_LZMA})



class Limits(NamedTuple):
    members: int = 200_000
    unpacked: int = 512 * 1024 * 1024
    ratio: int = 20

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, raised (or lowered) by CARTON_MAX_MEMBERS, CARTON_MAX_UNPACKED and
        CARTON_MAX_RATIO. A value that is not a positive integer is an error."""
        values = {}
        for field, var in (("members", "CARTON_MAX_MEMBERS"), ("unpacked", "CARTON_MAX_UNPACKED"),
                           ("ratio", "CARTON_MAX_RATIO")):
            raw = os.environ.get(var, "").strip()
            if raw:
                # isdigit() alone takes superscripts ('²'), which int() refuses.
                if not (raw.isascii() and raw.isdigit()) or int(raw) <= 0:
                    raise UnsafeMember(f"{var}={raw!r} is not a positive whole number")
                values[field] = int(raw)
        return cls(**values)

    def allowed(self, archive_size: int) -> int:
        """The most bytes an archive of `archive_size` bytes may unpack to."""
        return max(self.unpacked, self.ratio * archive_size)


def check_members(infos: Iterable[zipfile.ZipInfo], archive_size: int,
                  limits: Limits | None = None,
                  reserved: Callable[[str], bool] | None = None) -> list[zipfile.ZipInfo]:
    """Refuse the archive (UnsafeMember) unless every member passes; return its files
    (folders left out). `reserved(name)` is true for names the archive may not hold
    (carton's own markers)."""
    limits = limits or Limits.from_env()
    infos = list(infos)
    if len(infos) > limits.members:
        raise UnsafeMember(f"{len(infos)} members, more than {limits.members} "
                           "(CARTON_MAX_MEMBERS)")
    seen: dict[str, str] = {}
    folders: set[str] = set()
    files: list[zipfile.ZipInfo] = []
    file_keys: set[str] = set()
    total = 0
    for info in infos:
        name = info.filename
        # Without the flag, zipfile reads the name as cp437 and other tools as UTF-8.
        if not info.flag_bits & 0x800 and not name.isascii():
            raise UnsafeMember(f"member name {name!r} is not marked as UTF-8")
        problem = name_problem(name)
        if problem:
            raise UnsafeMember(f"unsafe member name {name!r}: {problem}")
        if reserved is not None and reserved(name):
            raise UnsafeMember(f"member {name!r} is reserved for carton's cache")
        key = unicodedata.normalize("NFC", name.rstrip("/")).casefold()
        if key in seen and not (name.endswith("/") and seen[key].endswith("/")):
            raise UnsafeMember(f"members {seen[key]!r} and {name!r} collide")
        seen[key] = name
        parts = key.split("/")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if info.is_dir():
            continue
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind not in (0, stat.S_IFREG):
            raise UnsafeMember(f"member {name!r} is not a regular file")
        if info.flag_bits & 0x1:
            raise UnsafeMember(f"member {name!r} is encrypted")
        if info.compress_type not in SUPPORTED_METHODS:
            raise UnsafeMember(f"member {name!r} uses compression method "
                               f"{info.compress_type}, which is not supported")
        files.append(info)
        file_keys.add(key)
        total += info.file_size
    clash = file_keys & folders
    if clash:
        raise UnsafeMember(f"{sorted(clash)[0]!r} is both a file and a folder")
    allowed = limits.allowed(archive_size)
    if total > allowed:
        raise UnsafeMember(f"unpacks to {total} bytes, more than the {allowed} allowed "
                           "(CARTON_MAX_UNPACKED, CARTON_MAX_RATIO)")
    return files
