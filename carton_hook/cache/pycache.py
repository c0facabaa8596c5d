"""Import modules from carton's cache, keeping each module's `.pyc` from its first import.

Entries are installed without bytecode: compiling a whole wheel before publishing costs
seconds for big ones (pandas: 1,440 modules) while a model imports a fraction of it.
Instead, the first import of a module compiles it and writes its `.pyc` into the entry,
whatever `PYTHONDONTWRITEBYTECODE` says: the cache is carton's own, as pip's install-time
compile is pip's. The `.pyc` is what `py_compile` writes (a timestamp pyc naming the
module's path in the cache), so `fetch --compile` (`bytecode`) and this loader make the
same bytes, and `verify --cache` checks both the same way.

Several processes may import the same module of a new entry at once (a Pool, a Spark
executor's workers): the compiling one holds a lock on the source file (flock), the others
wait and then read its `.pyc`, so each module is compiled once on a node. The `.pyc` is
written to a temporary file in the cache's `.tmp/` and renamed into place, so a reader
never sees half of one and a killed process leaves nothing in the entry. Where the cache
cannot be written (read-only, an image), the module is compiled in memory, as Python does.
"""

from __future__ import annotations

import _imp
import marshal
import os
import sys
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)
from importlib.util import MAGIC_NUMBER, cache_from_source

from carton_hook.system import O_CLOEXEC, lock

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from importlib.abc import PathEntryFinder
    from types import CodeType

_U32 = 0xFFFFFFFF

# Code compiled before its module's first import, by source path, with the source bytes
# it was compiled from (loading/earlycode.py); taken by that import if its source has
# the same bytes.
EARLY: dict[str, tuple[bytes, CodeType]] = {}


def timestamp_header(mtime: float, size: int) -> bytes:
    """The first 16 bytes of a timestamp `.pyc` of a source with this mtime and size
    (PEP 552: magic, flags 0, mtime, size), as `py_compile` writes them."""
    return (MAGIC_NUMBER + b"\0\0\0\0" + (int(mtime) & _U32).to_bytes(4, "little")
            + (size & _U32).to_bytes(4, "little"))


class CacheSourceLoader(SourceFileLoader):
    """`SourceFileLoader`, but the `.pyc` of a module compiled here is always kept."""

    # Where temporary `.pyc` files are written before their rename: the cache's `.tmp/`
    # (set when the carton is activated; one carton per process).
    tmp = ""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_filename(fullname)
        try:
            pyc = cache_from_source(source)
        except NotImplementedError:  # no cache tag: Python's own rules
            return self._python_code(fullname)
        header = _header_of(source)
        data = _read(pyc)
        if data is not None:
            if data[4:8] != b"\0\0\0\0":  # a hash-based pyc: Python knows how to check it
                return self._python_code(fullname)
            code = _code(data, header, source)
            if code is not None:
                return code
        return compile_and_keep(source, pyc, header, self.tmp, self.source_to_code)

    def _python_code(self, fullname: str) -> CodeType:
        code = super().get_code(fullname)
        if code is None:  # only for a module without source, which this loader is not for
            raise ImportError(f"no code for {fullname}", name=fullname)
        return code


def precompile(source: str, tmp: str) -> CodeType | None:
    """Make sure `source`'s `.pyc` is there, as its first import would write it (for
    `fetch --compile` and compiling ahead); its code, or None for a module that does not
    compile, which is left alone, as pip does (its import will say why)."""
    pyc = cache_from_source(source)
    header = _header_of(source)
    code = _code(_read(pyc), header, source)
    if code is None:
        try:
            code = compile_and_keep(source, pyc, header, tmp, source_to_code)
        except (SyntaxError, ValueError):
            return None
    return code


def compile_and_keep(source: str, pyc: str, header: bytes, tmp: str,
                     to_code: Callable[[bytes, str], CodeType]) -> CodeType:
    """Compile `source` under its lock (another process may be compiling it: then its
    `.pyc` is read once it is written) and keep the `.pyc` if the cache allows."""
    fd = os.open(source, os.O_RDONLY | O_CLOEXEC)
    try:
        if lock(fd):  # where no lock can be had, each process compiles for itself
            code = _code(_read(pyc), header, source)
            if code is not None:
                return code  # the process that held the lock compiled it
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
        early = EARLY.pop(source, None) if EARLY else None
        code = early[1] if early is not None and early[0] == data else to_code(data, source)
        _write(pyc, header + marshal.dumps(code), tmp)
        return code
    finally:
        os.close(fd)  # releases the lock


def source_to_code(data: bytes, path: str) -> CodeType:
    """What `SourceLoader.source_to_code` does (also for code compiled before its
    module's entry is published: loading/earlycode.py)."""
    return compile(data, path, "exec", dont_inherit=True)


def _header_of(source: str) -> bytes:
    st = os.stat(source)
    return timestamp_header(st.st_mtime, st.st_size)


def _code(data: bytes | None, header: bytes, source: str) -> CodeType | None:
    """The code in `data` if it is a `.pyc` of this source, else None."""
    if data is None or data[:16] != header:
        return None
    try:
        code = marshal.loads(memoryview(data)[16:])  # noqa: S302 - the cache's own file
    except (ValueError, EOFError, TypeError):
        return None  # torn by a crash: compiled again, and written over
    if not hasattr(code, "co_filename"):
        return None
    _imp._fix_co_filename(code, source)  # type: ignore[attr-defined]  # as Python does: the path it is imported from
    return code  # type: ignore[no-any-return]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _write(pyc: str, data: bytes, tmp: str) -> None:
    """Publish `data` at `pyc` by a rename; nothing if the cache cannot be written."""
    import _thread

    folder = os.path.dirname(pyc)
    temporary = os.path.join(tmp or folder,
                             f".pyc-{os.getpid()}-{_thread.get_ident()}-{os.path.basename(pyc)}")
    try:
        if tmp:
            os.makedirs(tmp, exist_ok=True)
        os.makedirs(folder, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                     | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with open(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, pyc)
    except OSError:
        try:  # noqa: SIM105 - contextlib is not imported on this path
            os.unlink(temporary)
        except OSError:
            pass


def path_hook(roots: Sequence[str]) -> Callable[[str], PathEntryFinder]:
    """A `sys.path_hooks` entry that gives `roots` and the folders inside them a
    `FileFinder` whose source loader keeps `.pyc` files (an extracted model's folder is
    itself on `sys.path`), and declines every other path (files included: `runpy.run_path`
    asks the hooks about a script's own path)."""
    prefixes = _prefixes(roots)
    finder_for = FileFinder.path_hook(
        (ExtensionFileLoader, EXTENSION_SUFFIXES), (CacheSourceLoader, SOURCE_SUFFIXES),
        (SourcelessFileLoader, BYTECODE_SUFFIXES))

    def hook(path: str) -> PathEntryFinder:
        if not os.path.join(path, "").startswith(prefixes):
            raise ImportError("not in carton's cache", path=path)
        return finder_for(path)  # declines what is not a folder, as Python's own hook

    return hook


def install(roots: Sequence[str], tmp: str) -> None:
    """Put the hook for `roots` first in `sys.path_hooks`, so that the locked packages'
    folders, and the subfolders of their packages, get it; forget the finders Python
    made for those folders before."""
    CacheSourceLoader.tmp = tmp
    sys.path_hooks.insert(0, path_hook(roots))
    prefixes = _prefixes(roots)
    for key in [k for k in sys.path_importer_cache if os.path.join(k, "").startswith(prefixes)]:
        del sys.path_importer_cache[key]


def _prefixes(roots: Sequence[str]) -> tuple[str, ...]:
    # With the separator: `/cache/models/abc` is inside `/cache/models/abc/`, and
    # `/cache/models/abcd` is not.
    return tuple(os.path.join(root, "") for root in roots)
