"""Compile modules of the cache before their first import, in other processes: every
module of some entries (`fetch --compile`), or what a first run's imports will load.

A run compiles what it imports, when it imports it (`pycache`). Compiling everything is
for images built once and run many times, whose read-only cache should never compile.
Compiling ahead (`ahead`, run by a first run's worker once it has installed what the
model imports) lets a first run compile on a second core while the model's process
imports.

Compiling holds the GIL, so threads do not help, and a `multiprocessing` pool costs about
a hundred milliseconds to start (each child imports its parent's main module), which
only pays for the biggest wheels. A helper here is a bare `python -I -S` that reads jobs
on its stdin: it starts in a few milliseconds. The thread that asks compiles too, so a
small job never waits for a helper, and a helper that dies only loses its speed.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from types import CodeType

from carton_hook.cache.layout import SCHEME_FOLDERS

# One job per line: the source path as the hex of its file-system bytes (no newline can
# appear in it); one line back when the job is done. The helper writes each `.pyc` as the
# module's first import would (`pycache.precompile`, imported from this package's folder,
# argv[1]; the cache's temporary folder is argv[2]). Errors are ignored, as pip and
# compileall do: a module that does not compile fails when imported, with Python's own
# message. The helper says when it is ready, so that no job waits for one still starting.
_HELPER = """\
import os, sys
sys.path.insert(0, sys.argv[1])
from carton_hook.cache.pycache import precompile
sys.stdout.write("\\n")
sys.stdout.flush()
for line in sys.stdin:
    try:
        precompile(os.fsdecode(bytes.fromhex(line.strip())), sys.argv[2])
    except Exception:
        pass
    sys.stdout.write("\\n")
    sys.stdout.flush()
"""
# The folder that holds carton_hook (this file is carton_hook/<room>/<module>.py).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))

AHEAD_SECONDS = 120

# The source a first run's imports may compile, in bytes, below which nothing is compiled
# ahead. Measured when a process of its own compiled ahead, whose interpreter's start took
# the other core for longer than the model's process would compile (docs/performance.md:
# six, 34 KB, was 6% slower with it, and `import requests`, 7% faster); kept since the
# worker walks itself.
AHEAD_WORTH = 100_000

# Jobs a helper holds at once.
WINDOW = 8

Source = str  # a module's path


def compile_one(source: Source, tmp: str) -> None:
    """Write `source`'s `.pyc`, as its first import would (errors are ignored)."""
    from carton_hook.cache.pycache import precompile

    with suppress(Exception):  # as the helper does, and pip
        precompile(source, tmp)


class _Batch:
    """The modules of one wheel: done when the last of them is."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()
        self.done = threading.Event()
        if count == 0:
            self.done.set()

    def finish_one(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self.done.set()


class Compiler:
    """A job queue that this process's threads and `helpers` helper processes share."""

    def __init__(self, helpers: int, tmp: str) -> None:
        self._tmp = tmp
        self._jobs: queue.SimpleQueue[tuple[Source, _Batch]] = queue.SimpleQueue()
        self._helpers = helpers
        self._started = False
        self._lock = threading.Lock()
        self.ready = 0  # helpers that took jobs
        self.helped = 0  # jobs that helpers did

    def start(self) -> None:
        """Start the helpers now (they are started on the first compile otherwise)."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for _ in range(self._helpers):
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-I", "-S", "-c", _HELPER, _PACKAGE_PARENT, self._tmp],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                except OSError:
                    break  # this process compiles alone
                threading.Thread(target=self._feed, args=(proc,), daemon=True,
                                 name="carton-compile").start()

    def compile(self, sources: list[Source]) -> None:
        """Compile every module of `sources`; returns when all are written."""
        if not sources:
            return
        self.start()
        batch = _Batch(len(sources))
        for source in sources:
            self._jobs.put((source, batch))
        while not batch.done.is_set():
            try:
                source, owner = self._jobs.get_nowait()
            except queue.Empty:
                batch.done.wait()  # the rest is in the helpers' hands
                break
            compile_one(source, self._tmp)
            owner.finish_one()

    def _feed(self, proc: subprocess.Popen[bytes]) -> None:
        """Keep one helper busy: up to WINDOW jobs in its pipe, so that it never waits
        for this thread, which shares the GIL with the installing ones. If the helper
        dies (or misbehaves), the jobs it held are compiled here and the thread ends:
        the asking threads compile the rest themselves."""
        assert proc.stdin is not None and proc.stdout is not None
        pending: deque[tuple[Source, _Batch]] = deque()  # written, not acknowledged
        try:
            if proc.stdout.readline() != b"\n":
                return  # it never started
            self.ready += 1
            while True:
                while len(pending) < WINDOW:
                    try:
                        job = self._jobs.get_nowait() if pending else self._jobs.get()
                    except queue.Empty:
                        break
                    pending.append(job)
                    proc.stdin.write(os.fsencode(job[0]).hex().encode("ascii") + b"\n")
                proc.stdin.flush()
                if proc.stdout.readline() != b"\n":
                    return  # it died
                self.helped += 1
                pending.popleft()[1].finish_one()
        except (OSError, ValueError):
            return  # a broken pipe: it died
        finally:
            for source, batch in pending:
                compile_one(source, self._tmp)  # a .pyc is renamed into place: no half file
                batch.finish_one()
            with suppress(OSError, ValueError):
                proc.stdin.close()


def compiler(tmp: str) -> Compiler:
    """A compiler with one helper per core beyond the first (at most 7)."""
    return Compiler(helpers=max(0, min((os.cpu_count() or 1) - 1, 7)), tmp=tmp)


def tree_sources(root: str) -> list[Source]:
    """The modules of an installed tree: every `.py` file but those in `*.dist-info` and
    in the scheme folders `bin/`, `include/` and `data/` (scripts, headers and data
    files, which pip does not compile either), unless such a folder is a package."""
    found: list[Source] = []
    schemes = {folder.rstrip("/") for folder in SCHEME_FOLDERS.values() if folder}
    for folder, dirs, files in os.walk(root):
        if folder == root:
            dirs[:] = [d for d in dirs if not d.endswith(".dist-info") and not (
                d in schemes and not os.path.isfile(os.path.join(root, d, "__init__.py")))]
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        found.extend(os.path.join(folder, name) for name in sorted(files)
                     if name.endswith(".py"))
    return found


def worth_ahead(names: list[str], roots: list[str]) -> bool:
    """Whether compiling ahead of the imports of `names` (dotted) from the folders `roots`
    pays: a second core, and AHEAD_WORTH bytes of source or more under those packages."""
    if (os.cpu_count() or 1) < 2 or not names or not roots:
        return False
    return _source_bytes(names, roots, AHEAD_WORTH) >= AHEAD_WORTH


def _source_bytes(names: list[str], roots: list[str], enough: int) -> int:
    """The bytes of Python source in the top-level modules and packages `names` name,
    counted up to `enough`: how much importing them may compile, at most."""
    total = 0
    folders = []
    for top in sorted({name.partition(".")[0] for name in names}):
        for root in roots:
            with suppress(OSError):
                total += os.stat(os.path.join(root, top + ".py")).st_size
            folders.append(os.path.join(root, top))
    while folders and total < enough:
        with suppress(OSError), os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.name.endswith(".py") and entry.is_file():
                    total += entry.stat().st_size
                elif entry.is_dir() and entry.name != "__pycache__":
                    folders.append(entry.path)
    return total


def ahead(names: list[str], roots: list[str], tmp: str, seconds: float = AHEAD_SECONDS,
          owner: int | None = None) -> list[str]:
    """Compile the modules that importing `names` loads, following the imports in
    their module-level code, breadth first, while the process `owner` lives; returns the
    modules compiled or read, in order. Imports inside functions are not followed (they
    run later, if at all)."""
    import time

    from carton_hook.cache.pycache import precompile

    with suppress(OSError, AttributeError):
        os.nice(5)  # the model's own process comes first
    deadline = time.monotonic() + seconds
    queue = deque(names)
    seen = set(names)
    homes: dict[str, list[str]] = {}
    done: list[str] = []
    while queue and time.monotonic() < deadline and _alive(owner):
        name = queue.popleft()
        found = _locate(name, roots, homes)
        if found is None:
            continue
        path, is_package = found
        try:
            code = precompile(path, tmp)
        except OSError:
            continue
        if code is None:
            continue
        done.append(name)
        for imported in module_imports(code, name, is_package):
            parts = imported.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c imports a and a.b first
                dotted = ".".join(parts[:i])
                if dotted not in seen:
                    seen.add(dotted)
                    queue.append(dotted)
    return done


def _alive(pid: int | None) -> bool:
    if pid is None or os.name == "nt":  # there, os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # there, but not ours to signal
    return True


def _locate(name: str, roots: list[str],
            homes: dict[str, list[str]]) -> tuple[str, bool] | None:
    """The source file of module `name` in one of `roots`, and whether it is a package;
    `homes` remembers which roots hold each top-level name."""
    parts = name.split(".")
    where = homes.get(parts[0])
    if where is None:
        where = homes[parts[0]] = [
            root for root in roots if os.path.isdir(os.path.join(root, parts[0]))
            or os.path.isfile(os.path.join(root, parts[0] + ".py"))]
    for root in where:
        base = os.path.join(root, *parts)
        init = os.path.join(base, "__init__.py")
        if os.path.isfile(init):
            return init, True
        if os.path.isfile(base + ".py"):
            return base + ".py", False
    return None


def module_imports(code: CodeType, name: str, is_package: bool, *,
                   checked_last: bool = False) -> Iterator[str]:
    """The absolute names that the module-level code of module `name` imports: each
    `import x.y`, and `from .z import w` (z, and z.w in case it is a module), in the
    order of the code; with `checked_last`, those under `if TYPE_CHECKING:` (which run
    only for a type checker) after all the others. Read off the bytecode (`LOAD_CONST
    level; LOAD_CONST fromlist; IMPORT_NAME name`, the same in 3.10-3.13): `dis` would
    cost a third of the compiling time, and is used only to find those blocks."""
    import dis

    load_const, import_name = dis.opmap["LOAD_CONST"], dis.opmap["IMPORT_NAME"]
    extended, cache = dis.opmap["EXTENDED_ARG"], dis.opmap.get("CACHE", -1)
    package = name if is_package else name.rpartition(".")[0]
    raw, consts, names = code.co_code, code.co_consts, code.co_names
    checked = (_type_checking_blocks(code) if checked_last and "TYPE_CHECKING" in names
               else [])
    last: list[str] = []
    before = after = (-1, 0)  # the two instructions before this one
    high = 0
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | high
        if op == extended:
            high = arg << 8
            continue
        high = 0
        if op == cache:
            continue
        if op == import_name and before[0] == load_const and after[0] == load_const:
            full = _absolute(names[arg], consts[before[1]], package)
            if full:
                fromlist = consts[after[1]]
                found = [full, *(f"{full}.{item}" for item in
                                 (fromlist if isinstance(fromlist, tuple) else ())
                                 if item != "*")]
                if any(start <= i < end for start, end in checked):
                    last.extend(found)
                else:
                    yield from found
        before, after = after, (op, arg)
    yield from last


def _type_checking_blocks(code: CodeType) -> list[tuple[int, int]]:
    """The byte ranges of `code` that run only where `TYPE_CHECKING` (or
    `typing.TYPE_CHECKING`) is true: the body of each `if TYPE_CHECKING:`, from the
    conditional jump past it to its target (the `else:`, or what follows)."""
    import dis

    blocks = []
    tested = False  # the last instruction loaded TYPE_CHECKING (a TO_BOOL may follow)
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_NAME", "LOAD_GLOBAL", "LOAD_ATTR"):
            tested = ins.argval == "TYPE_CHECKING"
        elif tested and ins.opname in ("TO_BOOL", "CACHE", "EXTENDED_ARG"):
            continue
        else:
            if tested and ins.opname.startswith("POP_JUMP") and "IF_FALSE" in ins.opname:
                blocks.append((ins.offset, int(ins.argval)))
            tested = False
    return blocks


def _absolute(target: str, level: object, package: str) -> str | None:
    """The absolute name of `import target` at `level` in `package` (None if it climbs
    out of it)."""
    if not isinstance(level, int) or level == 0:
        return target
    base = package.split(".") if package else []
    if not base or level > len(base):
        return None
    return ".".join([*base[:len(base) - (level - 1)], *filter(None, [target])])
