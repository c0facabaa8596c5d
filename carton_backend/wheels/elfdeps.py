"""The shared libraries a wheel's ELF files provide and need, read at pack time.

Installed one folder per wheel, a library in wheel B that an extension in wheel A links
to (torch and the `nvidia-*` wheels) is not where A's RPATH looks. The lock records, per
wheel, the libraries it provides (by SONAME) and the ones its ELF files need that it does
not provide itself, so that the runtime can load B's libraries before A's extensions.

Only the ELF header, the program headers, the dynamic section and the string table are
read, by seeking inside the zip member; a file that is not well-formed ELF is skipped.
"""

from __future__ import annotations

import posixpath
import re
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from carton_hook.formats.importnames import install_paths

_MAGIC = b"\x7fELF"
_ET_DYN = 3
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME = 0, 1, 5, 10, 14
# Bounds that no real library reaches and that keep a hostile file from costing memory.
_MAX_PHNUM = 4096
_MAX_DYNAMIC = 1 << 20
_MAX_STRTAB = 64 << 20


@dataclass(frozen=True)
class ElfFile:
    """What one ELF shared object says about linking."""

    soname: str | None
    needed: tuple[str, ...]


@dataclass
class SharedLibraries:
    """A wheel's libraries other wheels may need, and what it needs from outside itself."""

    # soname -> (installed path relative to the wheel's root, sonames it needs from
    # outside the wheel)
    provides: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    needs: tuple[str, ...] = ()


def scan_wheel(path: Path) -> SharedLibraries:
    """The shared libraries of the wheel at `path` (already validated)."""
    files: dict[str, ElfFile] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            landed = install_paths([info.filename])
            if not landed or not _may_be_shared_object(landed[0]) or info.is_dir():
                continue
            with zf.open(info) as member:
                elf = read_elf(member)
            if elf is not None:
                files[landed[0]] = elf
    return link_summary(files)


def link_summary(files: dict[str, ElfFile]) -> SharedLibraries:
    """Sum up one wheel's ELF files: a library is provided under its SONAME (or, without
    one, a `lib*` file name); a need is outside when no file of the wheel answers it."""
    provided: dict[str, str] = {}
    basenames = {posixpath.basename(p) for p in files}
    for path, elf in sorted(files.items()):
        name = elf.soname or posixpath.basename(path)
        if (elf.soname or name.startswith("lib")) and name not in provided:
            provided[name] = path

    def outside(elf: ElfFile) -> tuple[str, ...]:
        return tuple(sorted({n for n in elf.needed if n not in provided and n not in basenames}))

    summary = SharedLibraries()
    for name, path in sorted(provided.items()):
        summary.provides[name] = (path, outside(files[path]))
    summary.needs = tuple(sorted({n for elf in files.values() for n in outside(elf)}))
    return summary


# An extension module's name (`lib.cpython-312-x86_64-linux-gnu.so`, `_x.abi3.so`): a
# module Python loads, not a library another wheel links to.
_EXTENSION = re.compile(r"\.(cpython-[^.]+|abi3|pypy[^.]*)\.so$")


def may_link_across(members: Iterable[str]) -> bool:
    """Whether a wheel with these members may hold a library that another wheel's ELF
    files link to (torch's `torch/lib/libc10.so`, the `nvidia-*` wheels' `lib/*.so.N`),
    judged by file names alone: a `lib*.so` that is not an extension module and not in a
    `<name>.libs/` folder, where auditwheel puts copies, renamed with a hash, that only
    their own wheel loads."""
    for landed in install_paths(list(members)):
        name = posixpath.basename(landed)
        if (name.startswith("lib") and _may_be_shared_object(landed)
                and not _EXTENSION.search(name)
                and not landed.split("/", 1)[0].endswith(".libs")):
            return True
    return False


def _may_be_shared_object(path: str) -> bool:
    name = posixpath.basename(path)
    return name.endswith(".so") or ".so." in name


def read_elf(stream: IO[bytes]) -> ElfFile | None:
    """The SONAME and DT_NEEDED entries of an ELF shared object, or None when the stream
    is not one (or is malformed)."""
    try:
        return _read(stream)
    except (struct.error, ValueError, OSError, EOFError):
        return None


def _read(stream: IO[bytes]) -> ElfFile | None:
    ident = stream.read(64)
    if len(ident) < 52 or ident[:4] != _MAGIC or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide = ident[4] == 2
    end = "<" if ident[5] == 1 else ">"
    if struct.unpack_from(end + "H", ident, 16)[0] != _ET_DYN:
        return None
    if wide:
        phoff, = struct.unpack_from(end + "Q", ident, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", ident, 54)
    else:
        phoff, = struct.unpack_from(end + "I", ident, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", ident, 42)
    if phnum > _MAX_PHNUM or phentsize < (56 if wide else 32):
        return None
    stream.seek(phoff)
    table = _exactly(stream, phentsize * phnum)
    loads: list[tuple[int, int, int]] = []  # (vaddr, filesz, offset)
    dynamic: tuple[int, int] | None = None
    for i in range(phnum):
        at = i * phentsize
        if wide:
            ptype, _, offset, vaddr, _, filesz = struct.unpack_from(end + "IIQQQQ", table, at)
        else:
            ptype, offset, vaddr, _, filesz = struct.unpack_from(end + "IIIII", table, at)
        if ptype == _PT_LOAD:
            loads.append((vaddr, filesz, offset))
        elif ptype == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None or dynamic[1] > _MAX_DYNAMIC:
        return None
    stream.seek(dynamic[0])
    raw = _exactly(stream, dynamic[1])
    entry = struct.Struct(end + ("qQ" if wide else "iI"))
    needed: list[int] = []
    soname = strtab = strsz = None
    for tag, value in entry.iter_unpack(raw[: len(raw) - len(raw) % entry.size]):
        if tag == _DT_NULL:
            break
        if tag == _DT_NEEDED:
            needed.append(value)
        elif tag == _DT_SONAME:
            soname = value
        elif tag == _DT_STRTAB:
            strtab = value
        elif tag == _DT_STRSZ:
            strsz = value
    if strtab is None or strsz is None or strsz > _MAX_STRTAB:
        return None
    offset = next((off + strtab - vaddr for vaddr, size, off in loads
                   if vaddr <= strtab < vaddr + size), None)
    if offset is None:
        return None
    stream.seek(offset)
    strings = _exactly(stream, strsz)

    def text(at: int) -> str:
        if at >= len(strings):
            raise ValueError("string offset outside the string table")
        return strings[at: strings.index(b"\0", at)].decode("utf-8", "replace")

    return ElfFile(soname=text(soname) if soname is not None else None,
                   needed=tuple(text(n) for n in needed))


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("truncated")
    return data
