"""Compile, while a first run's import waits for its wheel, the modules it will load, from
the wheel the worker has downloaded and not yet unpacked.

On a first run the model's process waits for each wheel it imports first (requests,
then urllib3) while the worker checks and unpacks it: its core is idle then. Here it
compiles, from the downloaded file (its sha256 already checked by the worker), the
modules that the import will load, following the imports in their module-level code
from the waited-for names (`compileahead.module_imports`), and keeps each code object
with the source bytes it came from (`pycache.EARLY`). The import of such a module reads
its source in the cache as it would to compile it, and takes the kept code only if the
bytes are the same: what was compiled is exactly what was installed (checked against
RECORD), and compiling the same bytes under the same path gives the same code. Its
`.pyc` is then written as usual.
"""

from __future__ import annotations

import os
import threading

from carton_hook.cache import pycache

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO
    from zipfile import ZipFile, ZipInfo

# A module bigger than this is left to its import: compiling one took ~6.7 ms per 100 KB
# here, and the waiting import notices its wheel only between two modules.
MAX_SOURCE = 64 * 1024

# The scheme folders of a wheel whose members are installed at the entry's root.
_ROOT_SCHEMES = ("purelib/", "platlib/")


class EarlyCode:
    """The downloaded wheels of a first run, and the modules compiled from them."""

    def __init__(self, cache_root: str) -> None:
        self._root = cache_root
        self._lock = threading.Lock()
        # Per wheel downloaded and not yet installed: its file, opened when the worker
        # said so, and once read (by the waiting thread), its zip and its modules by
        # their path in the entry.
        self._wheels: dict[str, _Wheel] = {}
        # Dotted names to compile, the next one last: the order the import will load
        # them in (depth first, each module's imports in the order of its code).
        self._todo: list[str] = []
        self._done: set[str] = set()  # compiled, or found in no wheel
        self._later: list[str] = []  # names no downloaded wheel has (yet), first first

    def downloaded(self, sha: str, path: str) -> None:
        """The worker has downloaded and checked wheel `sha` at `path`. Opened now (the
        worker removes the file once the wheel is installed) and read only when a
        waiting import looks for a module in it: this runs beside the model's code."""
        try:
            file = open(path, "rb")  # noqa: SIM115 - closed in `installed`
        except OSError:
            return
        with self._lock:
            self._wheels[sha] = _Wheel(file)
            # Some may be in this one.
            self._done.difference_update(self._later)
            self._todo.extend(reversed(self._later))
            self._later.clear()

    def installed(self, sha: str) -> None:
        """Wheel `sha` is in the cache: its imports read it there, and its downloaded
        file, gone from the folder, takes no more disk once closed here."""
        with self._lock:
            wheel = self._wheels.pop(sha, None)
        if wheel is not None:
            wheel.close()

    def want(self, names: Sequence[str]) -> None:
        """Compile what importing `names` (dotted) loads, before what was wanted before."""
        with self._lock:
            self._push(names)

    def has_work(self) -> bool:
        return bool(self._todo)

    def step(self) -> bool:
        """Compile the next module; False if there was none to compile."""
        from carton_hook.installing.compileahead import module_imports

        while True:
            with self._lock:
                if not self._todo:
                    return False
                name = self._todo.pop()
                if name in self._done:
                    continue
                self._done.add(name)
                found = self._find(name)
                if found is None:
                    self._later.append(name)
                    continue
                sha, relpath, data = found
            # The path the finder's import will give (os.path.join, as the finder does).
            path = os.path.join(self._root, sha, *relpath.split("/"))
            try:
                code = pycache.source_to_code(data, path)
            except Exception:  # noqa: BLE001, S112 - its import compiles it, and says why
                continue
            pycache.EARLY[path] = (data, code)
            # What only a type checker imports last: a module of it may still be
            # imported another way, but later (the import's order is what counts here).
            imports: list[str] = []
            for imported in module_imports(code, name, is_package=relpath.endswith(
                    "/__init__.py"), checked_last=True):
                parts = imported.split(".")
                # Importing a.b.c imports a and a.b first.
                imports.extend(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            with self._lock:
                self._push(imports)
            return True

    def _push(self, names: Sequence[str]) -> None:
        """Compile `names` next, the first of them first (the caller holds the lock); a
        name already waiting its turn moves up, as the import will load it sooner."""
        self._todo.extend(reversed([name for name in dict.fromkeys(names)
                                    if name not in self._done]))

    def _find(self, name: str) -> tuple[str, str, bytes] | None:
        """The wheel, path in the entry and source of module `name` (the caller holds
        the lock)."""
        base = name.replace(".", "/")
        for sha, wheel in self._wheels.items():
            members = wheel.members()
            for relpath in (base + "/__init__.py", base + ".py"):
                info = members.get(relpath)
                if info is not None:
                    source = wheel.read(info)
                    return None if source is None else (sha, relpath, source)
        return None


class _Wheel:
    """A downloaded wheel's file, read as a zip when first asked."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._zip: ZipFile | None = None
        self._members: dict[str, ZipInfo] | None = None

    def members(self) -> dict[str, ZipInfo]:
        """Its modules (up to MAX_SOURCE) by their path in the entry; none if it is not
        a zip."""
        if self._members is None:
            import zipfile

            self._members = {}
            try:
                self._zip = zipfile.ZipFile(self._file)
            except (OSError, zipfile.BadZipFile):
                return self._members
            for info in self._zip.infolist():
                name = info.filename
                if not name.endswith(".py") or info.file_size > MAX_SOURCE:
                    continue
                head, _, rest = name.partition("/")
                if head.endswith(".data"):
                    scheme = next((s for s in _ROOT_SCHEMES if rest.startswith(s)), None)
                    if scheme is None:
                        continue
                    name = rest[len(scheme):]
                self._members[name] = info
        return self._members

    def read(self, info: ZipInfo) -> bytes | None:
        import zipfile

        assert self._zip is not None
        try:
            return self._zip.read(info)
        except (OSError, zipfile.BadZipFile, EOFError):
            return None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        self._file.close()
