"""`python -m carton_hook verify MODEL [--cache [--remove]]`: check a carton without
running it, and optionally the cache entries it uses.

The carton: every archive member against MANIFEST (or the files of an unpacked carton),
the lock's schema, every bundled wheel against its locked sha256 and its own RECORD,
with the same validator the build half and the runtime use. The cache (`--cache`):
every entry of a wheel the lock names is re-hashed against the RECORD it was installed
with; each `.pyc` (written by the first import of its module, or by `fetch --compile`)
must hold the code its source compiles to, for this interpreter, and nothing after it;
numba's cache of a module's functions (`cache=True`) is left to numba, which checks it
against the module's source; any other file is unexpected. `--remove` takes entries
that fail out of the cache (the next run installs them again). Nothing here opens a
socket or runs code from the carton.
"""

from __future__ import annotations

import csv
import hashlib
import io
import marshal
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from carton_hook.cache.entries import is_complete, remove
from carton_hook.cache.layout import COMPLETE, packages_dir
from carton_hook.errors import CartonError
from carton_hook.formats.archive import (
    CARTON_TOML,
    MANIFEST,
    MODEL_PREFIX,
    parse_manifest,
    read_archive,
    read_member,
)
from carton_hook.formats.hashing import file_digest, file_sha256
from carton_hook.formats.lockfile import LOCK_PATH, Lock, parse_lock
from carton_hook.formats.recordfile import encode_digest
from carton_hook.formats.wheelcheck import check_wheel


@dataclass
class Report:
    """What was checked, and every problem found (one line each)."""

    problems: list[str] = field(default_factory=list)
    files: int = 0
    wheels: int = 0
    entries: int = 0
    removed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(model: Path, *, cache: bool = False, remove_bad: bool = False,
           cache_root: Path | None = None) -> Report:
    """Check `model` (a `.carton`, an unpacked carton or a model folder)."""
    report = Report()
    if model.is_file():
        lock, read_bundled = _check_archive(model, report)
    elif (model / CARTON_TOML).is_file():
        lock, read_bundled = _check_unpacked(model, report)
    elif (model / "pyproject.toml").is_file():
        lock, read_bundled = _check_folder(model, report)
    else:
        raise CartonError(f"{model}: not a .carton file, an unpacked carton or a model folder")
    if lock is None:
        return report
    for sha, name, relpath in _bundled(lock):
        report.wheels += 1
        try:
            data = read_bundled(relpath)
        except (OSError, KeyError) as exc:
            report.problems.append(f"{relpath}: the lock names it, but it cannot be read ({exc})")
            continue
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            report.problems.append(f"{relpath}: sha256 is {actual}, the lock says {sha}")
            continue
        problem = _wheel_problem(data, name)
        if problem:
            report.problems.append(f"{relpath}: {problem}")
    if cache:
        root = cache_root or Path(packages_dir())
        for sha in sorted({w.wheel.sha256 for e in lock.environments for w in e.packages}):
            entry = root / sha
            if not (entry.exists() or entry.is_symlink()):
                continue
            report.entries += 1
            problems = check_entry(entry, sha)
            report.problems.extend(f"cache entry {entry}: {p}" for p in problems)
            if problems and remove_bad and remove(root, sha):
                report.removed.append(sha)
    return report


# ---------------------------------------------------------------- the carton


def _check_archive(path: Path, report: Report) -> tuple[Lock | None,
                                                        Callable[[str], bytes]]:
    _, manifest = read_archive(path)  # raises ArchiveError at the first bad member
    report.files += len(manifest)

    def read(relpath: str) -> bytes:
        with zipfile.ZipFile(path) as zf:
            return read_member(zf, MODEL_PREFIX + relpath, str(path))

    return _lock(read, str(path), report), read


def _check_unpacked(folder: Path, report: Report) -> tuple[Lock | None,
                                                           Callable[[str], bytes]]:
    where = folder / MANIFEST
    try:
        manifest = parse_manifest(where.read_bytes(), str(where))
    except OSError as exc:
        raise CartonError(f"{where}: cannot read: {exc}") from exc
    present = {f"{MODEL_PREFIX}{p}" for p in _files(folder / "model")}
    for name in sorted(present ^ set(manifest)):
        what = "not in MANIFEST" if name in present else "in MANIFEST but missing"
        report.problems.append(f"{folder / name}: {what}")
    for name in sorted(present & set(manifest)):
        report.files += 1
        if file_sha256(folder / name) != manifest[name]:
            report.problems.append(f"{folder / name}: does not match its MANIFEST hash")
    root = folder / "model"

    def read(relpath: str) -> bytes:
        return (root / relpath).read_bytes()

    return _lock(read, str(root / LOCK_PATH), report), read


def _check_folder(folder: Path, report: Report) -> tuple[Lock | None, Callable[[str], bytes]]:
    def read(relpath: str) -> bytes:
        return (folder / relpath).read_bytes()

    return _lock(read, str(folder / LOCK_PATH), report), read


def _lock(read: Callable[[str], bytes], where: str, report: Report) -> Lock | None:
    try:
        raw = read(LOCK_PATH)
    except (OSError, KeyError):
        report.problems.append(f"{where}: missing; lock the model folder first")
        return None
    try:
        return parse_lock(raw, where)
    except CartonError as exc:
        report.problems.append(str(exc))
        return None


def _bundled(lock: Lock) -> Iterator[tuple[str, str, str]]:
    seen: set[str] = set()
    for env in lock.environments:
        for package in env.packages:
            wheel = package.wheel
            if wheel.path and wheel.path not in seen:
                seen.add(wheel.path)
                yield wheel.sha256, wheel.name, wheel.path


def _wheel_problem(data: bytes, name: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="carton-verify-") as tmp:
        path = Path(tmp, name)
        path.write_bytes(data)
        try:
            check_wheel(path, name)
        except CartonError as exc:
            return str(exc)
    return None


# ---------------------------------------------------------------- the cache


def check_entry(entry: Path, sha256: str) -> list[str]:
    """Every way the installed tree at `entry` differs from what was published."""
    if entry.is_symlink() or not entry.is_dir():
        return ["not a folder"]
    if not is_complete(entry, sha256):
        return ["no valid completion marker (an interrupted or foreign entry)"]
    records = sorted(entry.glob("*.dist-info/RECORD"))
    if len(records) != 1:
        return [f"expected one *.dist-info/RECORD, found {len(records)}"]
    problems: list[str] = []
    listed: set[str] = set()
    with records[0].open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    for row in rows:
        if not row:
            continue
        relpath = row[0]
        listed.add(os.path.normpath(relpath))
        if len(row) < 2 or not row[1]:
            continue  # RECORD itself
        algorithm, _, expected = row[1].partition("=")
        path = entry / relpath
        if algorithm not in ("sha256", "sha384", "sha512"):
            problems.append(f"{relpath}: RECORD names the hash {algorithm!r}")
            continue
        if not path.is_file():
            problems.append(f"{relpath}: missing")
            continue
        digest = file_digest(path, algorithm).digest()
        if encode_digest(digest) != expected:
            problems.append(f"{relpath}: edited (its hash is not the one in RECORD)")
    compiled = []
    for relpath in _files(entry):
        if relpath == COMPLETE or os.path.normpath(relpath) in listed:
            continue
        if "/__pycache__/" in f"/{relpath}" and relpath.endswith(".pyc"):
            compiled.append(relpath)
            continue
        if _numba_cache(relpath, listed):
            continue
        problems.append(f"{relpath}: not in RECORD (added after installing)")
    problems.extend(_pyc_problems(entry, compiled))
    return problems


def _pyc_problems(entry: Path, relpaths: list[str]) -> list[str]:
    """Check compiled files in a child process: unmarshalling a crafted `.pyc` may crash
    the interpreter, and a crash must be a finding, not the end of `verify`."""
    if not relpaths:
        return []
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "carton_hook.commands.verify", str(entry)],
                          input=json.dumps(relpaths), capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    if proc.returncode != 0:
        return [f"checking its compiled files failed (exit status {proc.returncode}): "
                f"a .pyc may be crafted to crash the interpreter"]
    found: list[str] = json.loads(proc.stdout)
    return found


def _pyc_problem(entry: Path, relpath: str) -> str | None:
    """A compiled file is legitimate if it is what the first import of its source (or
    `fetch --compile`) writes: named for this interpreter, with its magic number, holding
    the code the source compiles to. (A header whose time differs from the source's, as
    after a copy that did not keep file times, is not a finding: Python ignores that
    file and compiles the source again.)"""
    import sys
    from importlib.util import MAGIC_NUMBER

    pyc = entry / relpath
    folder = pyc.parent.parent
    stem, _, rest = pyc.name.partition(".")
    source = folder / f"{stem}.py"
    if not source.is_file():
        return "compiled code without its source"
    tag, _, level = rest.removesuffix(".pyc").partition(".opt-")
    if tag != sys.implementation.cache_tag or not rest.endswith(".pyc") or (
            level and level not in ("1", "2")):
        return f"not a name this interpreter ({sys.implementation.cache_tag}) compiles to"
    data = pyc.read_bytes()
    if data[:4] != MAGIC_NUMBER:
        return "compiled by another Python (its magic number is not this one's)"
    try:
        # In the child process of _pyc_problems, which may crash on a crafted file.
        # Read from a stream, which says where the code ends: `marshal.loads`, as the
        # import itself, ignores whatever follows it.
        stream = io.BytesIO(data)
        stream.seek(16)
        code = marshal.load(stream)  # noqa: S302
        expected = compile(source.read_bytes(), str(source), "exec", dont_inherit=True,
                           optimize=int(level or 0))
    except (ValueError, EOFError, TypeError, SyntaxError) as exc:
        return f"unreadable compiled code ({exc})"
    if code != expected:
        return "compiled code differs from its source (edited)"
    if stream.tell() != len(data):
        return f"{len(data) - stream.tell()} bytes after its compiled code (written to)"
    return None


# What numba writes beside a module whose functions it compiles with `cache=True`
# (umap-learn, pynndescent, librosa do): `__pycache__/<module>.<function>-<line>.py311.nbi`,
# the index, and `....<n>.nbc`, the compiled code. numba checks the index against the
# source file's stamp before it loads one.
_NUMBA_CACHE = re.compile(r"(?P<module>[^./]+)\.[^/]+\.py3\d+[a-z]*(?:\.nbi|\.\d+\.nbc)")


def _numba_cache(relpath: str, listed: set[str]) -> bool:
    """Whether `relpath` is numba's cache of a function of a module the entry installed."""
    folder, inside, name = f"/{relpath}".rpartition("/__pycache__/")
    match = _NUMBA_CACHE.fullmatch(name) if inside else None
    if match is None:
        return False
    return os.path.normpath(f"{folder}/{match['module']}.py".lstrip("/")) in listed


def _files(root: Path) -> Iterator[str]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder, name).relative_to(root).as_posix()




def format_report(model: Path, report: Report, *, cache: bool) -> str:
    """The summary line a person reads last."""
    parts = [f"{report.files} files against MANIFEST" if report.files else None,
             f"{report.wheels} bundled wheels",
             f"{report.entries} cache entries" if cache else None]
    checked = ", ".join(p for p in parts if p)
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    line = f"carton: verify {model}: {verdict} ({checked} checked)"
    if report.removed:
        line += f"; removed {len(report.removed)} bad cache entries"
    return line


def _main() -> None:
    """`python -m carton_hook.commands.verify ENTRY` with the relative paths of `.pyc` files as a
    JSON list on stdin: prints the problems found as a JSON list."""
    import json
    import sys

    entry = Path(sys.argv[1])
    relpaths = json.loads(sys.stdin.read())
    found = []
    for relpath in relpaths:
        problem = _pyc_problem(entry, relpath)
        if problem:
            found.append(f"{relpath}: {problem}")
    print(json.dumps(found))


if __name__ == "__main__":
    _main()
