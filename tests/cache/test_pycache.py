"""The cache's loader: a module's `.pyc` is written on its first import, whatever
PYTHONDONTWRITEBYTECODE says, once per node when processes race, and never half."""

from __future__ import annotations

import errno
import json
import marshal
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_hook.cache import pycache
from carton_hook.cache.pycache import timestamp_header

TAG = sys.implementation.cache_tag
ROOT_OF_CARTON = str(Path(pycache.__file__).resolve().parent.parent)


def pyc(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.stem}.{TAG}.pyc"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    root = tmp_path / "packages"
    (root / "entry" / "pkg").mkdir(parents=True)
    (root / "entry" / "pkg" / "__init__.py").write_text("from . import sub\nVALUE = 1\n")
    (root / "entry" / "pkg" / "sub.py").write_text("def f():\n    return 42\n")
    (root / "entry" / "flat.py").write_text("X = 'flat'\n")
    return root


@pytest.fixture
def import_state() -> Iterator[None]:
    """Restore what installing the hook and importing changes."""
    saved = (list(sys.path), list(sys.path_hooks), dict(sys.path_importer_cache),
             set(sys.modules), sys.dont_write_bytecode)
    sys.dont_write_bytecode = True  # as PYTHONDONTWRITEBYTECODE=1 does
    try:
        yield
    finally:
        sys.path[:], sys.path_hooks[:] = saved[0], saved[1]
        sys.path_importer_cache.clear()
        sys.path_importer_cache.update(saved[2])
        for name in set(sys.modules) - saved[3]:
            del sys.modules[name]
        sys.dont_write_bytecode = saved[4]
        pycache.CacheSourceLoader.tmp = ""


def activate(root: Path) -> None:
    pycache.install([str(root)], str(root / ".tmp"))
    sys.path.insert(0, str(root / "entry"))


def assert_pyc_of(source: Path) -> None:
    data = pyc(source).read_bytes()
    st = source.stat()
    assert data[:16] == timestamp_header(st.st_mtime, st.st_size)
    code = marshal.loads(data[16:])
    assert code.co_filename == str(source)
    assert code == compile(source.read_bytes(), str(source), "exec", dont_inherit=True)


def test_first_import_keeps_the_pyc_despite_dont_write_bytecode(
        cache: Path, import_state: None) -> None:
    activate(cache)
    import flat  # type: ignore[import-not-found]
    import pkg  # type: ignore[import-not-found]

    assert (pkg.sub.f(), flat.X) == (42, "flat")
    assert isinstance(pkg.__loader__, pycache.CacheSourceLoader)
    assert isinstance(pkg.sub.__loader__, pycache.CacheSourceLoader)  # submodules too
    for source in ("pkg/__init__.py", "pkg/sub.py", "flat.py"):
        assert_pyc_of(cache / "entry" / source)
    assert os.listdir(cache / ".tmp") == []  # the temporary files were renamed


def test_a_pyc_is_what_py_compile_writes(cache: Path, import_state: None) -> None:
    """The same bytes as `py_compile` (timestamp mode), so precompiling and the first
    import agree, and `verify --cache` checks both the same way."""
    import py_compile

    activate(cache)
    import flat  # noqa: F401

    source = cache / "entry" / "flat.py"
    written = pyc(source).read_bytes()
    other = cache / "other.pyc"
    py_compile.compile(str(source), cfile=str(other), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    assert written == other.read_bytes()


def test_the_next_import_reads_the_pyc(cache: Path, import_state: None,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    activate(cache)
    import flat

    del sys.modules["flat"]
    sys.path_importer_cache.clear()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(pycache.CacheSourceLoader, "source_to_code", refuse)
    import flat  # noqa: F811

    assert flat.X == "flat"


def test_a_root_on_sys_path_keeps_the_pyc_of_its_own_modules(
        cache: Path, tmp_path: Path, import_state: None) -> None:
    """An extracted model's folder is itself on `sys.path`: its top-level modules keep
    their `.pyc` too; a folder whose name only begins like it is not the cache's."""
    root = cache / "entry"
    sibling = cache / "entry-other"
    sibling.mkdir()
    (sibling / "near.py").write_text("Z = 3\n")
    pycache.install([str(root)], str(cache / ".tmp"))
    sys.path[:0] = [str(root), str(sibling)]
    import flat  # type: ignore[import-not-found]
    import near  # type: ignore[import-not-found]

    assert type(flat.__loader__) is pycache.CacheSourceLoader
    assert_pyc_of(root / "flat.py")
    assert type(near.__loader__).__name__ == "SourceFileLoader"
    assert not (sibling / "__pycache__").exists()


def test_folders_outside_the_cache_are_left_to_python(
        cache: Path, tmp_path: Path, import_state: None) -> None:
    outside = tmp_path / "project"
    outside.mkdir()
    (outside / "mine.py").write_text("Y = 2\n")
    activate(cache)
    sys.path.insert(0, str(outside))
    import mine  # type: ignore[import-not-found]

    assert mine.Y == 2
    assert type(mine.__loader__).__name__ == "SourceFileLoader"
    assert not (outside / "__pycache__").exists()  # dont_write_bytecode still holds there


def test_a_script_in_the_cache_runs_as_a_script(cache: Path, import_state: None) -> None:
    """`runpy.run_path` (multiprocessing's spawn re-runs a main script so) asks the path
    hooks about the script's own path: a file is declined, as Python's own hook does."""
    import pkgutil
    import runpy

    script = cache / "entry" / "script.py"
    script.write_text("RESULT = 'ran'\n")
    activate(cache)
    assert pkgutil.get_importer(str(script)) is None
    assert runpy.run_path(str(script))["RESULT"] == "ran"


def test_an_unwritable_cache_compiles_in_memory(cache: Path, import_state: None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only cache (an image): every write fails, the import works, nothing is left
    behind. (Root ignores file modes, so the failure is injected where it happens.)"""
    attempts = []

    def read_only(*args: object, **kwargs: object) -> int:
        attempts.append(args[0])
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "makedirs", read_only)
    activate(cache)
    import pkg

    assert pkg.sub.f() == 42
    assert attempts
    assert not list(cache.rglob("*.pyc"))
    assert not list(cache.rglob(".pyc-*"))


@pytest.mark.parametrize("damage", ["torn", "foreign", "stale"])
def test_a_bad_pyc_is_compiled_again_and_replaced(cache: Path, import_state: None,
                                                  damage: str) -> None:
    source = cache / "entry" / "flat.py"
    target = pyc(source)
    target.parent.mkdir()
    st = source.stat()
    right = timestamp_header(st.st_mtime, st.st_size)
    other = marshal.dumps(compile("X = 'other'\n", str(source), "exec"))
    target.write_bytes({"torn": right + other[:5],  # a crash mid-write
                        "foreign": right[:4] + b"\0" * 12 + other,  # another source's
                        "stale": timestamp_header(st.st_mtime - 10, st.st_size) + other}[damage])
    activate(cache)
    import flat

    assert flat.X == "flat"
    assert_pyc_of(source)


def test_a_hash_based_pyc_follows_pythons_rules(cache: Path, import_state: None) -> None:
    import py_compile

    source = cache / "entry" / "flat.py"
    py_compile.compile(str(source), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    before = pyc(source).read_bytes()
    activate(cache)
    import flat

    assert flat.X == "flat"
    assert pyc(source).read_bytes() == before


# One process of a race: it says it is ready, waits for the start, imports the big module,
# and reports when it started and whether it compiled the module itself.
RACER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from carton_hook.cache import pycache
    root, me = sys.argv[2], sys.argv[3]
    compiled = []
    real = pycache.CacheSourceLoader.source_to_code
    def counting(self, data, path, **kw):
        compiled.append(path)
        return real(self, data, path, **kw)
    pycache.CacheSourceLoader.source_to_code = counting
    pycache.install([root], os.path.join(root, ".tmp"))
    sys.path.insert(0, os.path.join(root, "entry"))
    open(os.path.join(root, "ready-" + me), "w").close()
    while not os.path.exists(os.path.join(root, "go")):
        time.sleep(0.001)
    started = time.monotonic()
    import big
    print(json.dumps({"started": started, "ended": time.monotonic(), "compiled": compiled,
                      "total": big.TOTAL}))
""")


def test_racing_processes_compile_each_module_once(cache: Path) -> None:
    """Eight processes import a new module at the same moment: one compiles it, the
    others wait for its `.pyc` and read it (a Pool's workers on an empty cache)."""
    lines = 60_000
    (cache / "entry" / "big.py").write_text(
        "".join(f"V{i} = {i}\n" for i in range(lines)) + f"TOTAL = {lines}\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", RACER, ROOT_OF_CARTON, str(cache), str(n)],
                              stdout=subprocess.PIPE, text=True, env=env) for n in range(8)]
    deadline = time.monotonic() + 60
    while len(list(cache.glob("ready-*"))) < 8:
        assert time.monotonic() < deadline, "the racers never got ready"
        time.sleep(0.005)
    (cache / "go").touch()
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        reports.append(json.loads(out))
    assert all(r["total"] == lines for r in reports)
    compilers = [r for r in reports if r["compiled"]]
    assert len(compilers) == 1, [r["compiled"] for r in reports]
    # They did overlap: every racer had started before the one compile was done.
    assert max(r["started"] for r in reports) < compilers[0]["ended"]
    assert_pyc_of(cache / "entry" / "big.py")
    assert os.listdir(cache / ".tmp") == []


def test_code_compiled_early_is_taken_only_for_the_same_source(
        cache: Path, import_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code compiled from a downloaded wheel before its entry was published
    (loading/earlycode.py) stands in for compiling, and its `.pyc` is written, only where
    the installed source has the very bytes it was compiled from."""
    flat_py, sub_py = cache / "entry" / "flat.py", cache / "entry" / "pkg" / "sub.py"
    early = compile(flat_py.read_bytes(), str(flat_py), "exec", dont_inherit=True)
    monkeypatch.setitem(pycache.EARLY, str(flat_py), (flat_py.read_bytes(), early))
    # Compiled from other bytes than the installed ones: never taken.
    stale = compile("def f():\n    return 'stale'\n", str(sub_py), "exec", dont_inherit=True)
    monkeypatch.setitem(pycache.EARLY, str(sub_py), (b"def f():\n    return 'stale'\n", stale))
    compiled: list[str] = []
    real = pycache.CacheSourceLoader.source_to_code

    def counting(self: pycache.CacheSourceLoader, data: bytes, path: str) -> object:
        compiled.append(os.path.basename(path))
        return real(self, data, path)  # type: ignore[arg-type]

    monkeypatch.setattr(pycache.CacheSourceLoader, "source_to_code", counting)
    activate(cache)
    import flat  # type: ignore[import-not-found]
    import pkg  # type: ignore[import-not-found]

    assert (flat.X, pkg.sub.f()) == ("flat", 42)
    assert compiled == ["__init__.py", "sub.py"]  # not flat.py: its early code was taken
    assert_pyc_of(flat_py)
    assert_pyc_of(sub_py)
    assert str(flat_py) not in pycache.EARLY and str(sub_py) not in pycache.EARLY
