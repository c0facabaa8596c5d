"""install_wheel(): a checked wheel installed as if into its cache entry, written below a
staging folder."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import marshal
import os
import stat
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.errors import WheelError
from carton_hook.unpack import install_wheel

from .factory import make_wheel, record_row

INTERPRETER = "/opt/carton-test/bin/python3"
DIST_INFO = "demo-1.0.dist-info"
DATA = "demo-1.0.data"
SCRIPT = b"#!python\nimport demo\nprint(demo.VALUE)\n"
TAG = sys.implementation.cache_tag

MEMBERS: dict[str, tuple[bytes, int]] = {
    "demo/__init__.py": (b"VALUE = 42\n", 0o644),
    "demo/sub/__init__.py": (b"", 0o644),
    "demo/sub/helper.py": (b"def helper():\n    return 'help'\n", 0o644),
    "demo/tool.sh": (b"#!/bin/sh\necho tool\n", 0o755),
    "demo/data.txt": (b"plain data\n", 0o644),
    f"{DATA}/purelib/extra_mod.py": (b"EXTRA = True\n", 0o644),
    f"{DATA}/scripts/demo-run": (SCRIPT, 0o755),
    f"{DIST_INFO}/METADATA": (b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n", 0o644),
    f"{DIST_INFO}/WHEEL": (b"Wheel-Version: 1.0\nGenerator: carton-tests\n"
                           b"Root-Is-Purelib: true\nTag: py3-none-any\n", 0o644),
}


def build(directory: Path, members: dict[str, tuple[bytes, int]] = MEMBERS, *,
          written: dict[str, bytes] | None = None) -> Path:
    """`demo-1.0-py3-none-any.whl` with `members` (bytes, mode) and a RECORD computed from
    them; `written` replaces some members' bytes after RECORD is computed (tampering)."""
    rows = [record_row(name, data) for name, (data, _) in members.items()]
    rows.append([f"{DIST_INFO}/RECORD", "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    record = buf.getvalue().encode()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        all_members = {**members, f"{DIST_INFO}/RECORD": (record, 0o644)}
        for name, (data, mode) in all_members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (written or {}).get(name, data))
    return path


def install(tmp_path: Path, wheel: Path) -> tuple[Path, Path, Path]:
    """Install `wheel`; return (final, destdir, the tree as written below destdir)."""
    final = tmp_path / "cache" / ("ab" * 32)
    destdir = tmp_path / "work" / "dest"
    install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
    return final, destdir, destdir / final.relative_to(final.anchor)


def files_below(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def pyc(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.stem}.{TAG}.pyc"


def code_filename(pyc_path: Path) -> str:
    code = marshal.loads(pyc_path.read_bytes()[16:])
    return str(code.co_filename)


@pytest.fixture(autouse=True)
def no_bytecode_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the runtime: Python itself is told never to write bytecode."""
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


def test_layout(tmp_path: Path) -> None:
    final, destdir, tree = install(tmp_path, build(tmp_path / "dist"))
    assert not final.exists()  # only destdir is written
    assert [p.name for p in destdir.iterdir()] == [final.parts[1]]
    py = ["demo/__init__.py", "demo/sub/__init__.py", "demo/sub/helper.py", "extra_mod.py"]
    assert files_below(tree) == {
        *py,
        *(pyc(Path(p)).as_posix() for p in py),
        "demo/tool.sh",
        "demo/data.txt",
        "bin/demo-run",
        f"{DIST_INFO}/METADATA",
        f"{DIST_INFO}/WHEEL",
        f"{DIST_INFO}/INSTALLER",
        f"{DIST_INFO}/RECORD",
    }
    assert (tree / "demo" / "__init__.py").read_bytes() == b"VALUE = 42\n"
    assert (tree / "extra_mod.py").read_bytes() == b"EXTRA = True\n"
    assert not (tree / DATA).exists()
    assert (tree / f"{DIST_INFO}/INSTALLER").read_bytes() == b"carton\n"


def test_script_shebang_is_rewritten(tmp_path: Path) -> None:
    _, _, tree = install(tmp_path, build(tmp_path / "dist"))
    lines = (tree / "bin" / "demo-run").read_bytes().splitlines(keepends=True)
    assert lines[0] == f"#!{INTERPRETER}\n".encode()
    assert b"".join(lines[1:]) == SCRIPT.split(b"\n", 1)[1]
    assert os.stat(tree / "bin" / "demo-run").st_mode & 0o111 == 0o111


def test_exec_bit_is_kept_and_only_where_set(tmp_path: Path) -> None:
    _, _, tree = install(tmp_path, build(tmp_path / "dist"))
    assert os.stat(tree / "demo" / "tool.sh").st_mode & 0o111 == 0o111
    for plain in ("demo/__init__.py", "demo/data.txt", "extra_mod.py",
                  f"{DIST_INFO}/RECORD"):
        assert os.stat(tree / plain).st_mode & 0o111 == 0, plain
    assert all(stat.S_ISREG(os.lstat(tree / f).st_mode) for f in files_below(tree))


def test_bytecode_is_compiled_and_names_the_final_path(tmp_path: Path) -> None:
    final, destdir, tree = install(tmp_path, build(tmp_path / "dist"))
    for rel in ("demo/__init__.py", "demo/sub/helper.py", "extra_mod.py"):
        compiled = pyc(tree / rel)
        assert compiled.is_file(), rel
        assert code_filename(compiled) == str(final / rel)
        assert str(destdir) not in code_filename(compiled)
    # Nothing is compiled outside the package schemes.
    assert not (tree / "bin" / "__pycache__").exists()


def test_pyc_is_valid_for_its_source(tmp_path: Path) -> None:
    """The header records the source's size, so the interpreter will use the `.pyc`."""
    _, _, tree = install(tmp_path, build(tmp_path / "dist"))
    src = tree / "demo" / "sub" / "helper.py"
    header = pyc(src).read_bytes()[:16]
    import importlib.util

    assert header[:4] == importlib.util.MAGIC_NUMBER
    flags = int.from_bytes(header[4:8], "little")
    if flags == 0:  # timestamp-based: size must match
        assert int.from_bytes(header[12:16], "little") == src.stat().st_size


def test_record_lists_the_installed_files(tmp_path: Path) -> None:
    _, _, tree = install(tmp_path, build(tmp_path / "dist"))
    rows = list(csv.reader((tree / f"{DIST_INFO}/RECORD").read_text().splitlines()))
    by_path = {row[0]: row for row in rows}
    assert len(by_path) == len(rows)
    expected = {p for p in files_below(tree) if "__pycache__" not in p}
    assert set(by_path) == expected
    assert by_path[f"{DIST_INFO}/RECORD"][1:] == ["", ""]
    for path, (algo_hash, size) in ((p, r[1:]) for p, r in by_path.items()
                                    if p != f"{DIST_INFO}/RECORD"):
        data = (tree / path).read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert algo_hash == f"sha256={digest}", path
        assert int(size) == len(data), path


def test_make_wheel_wheel_installs(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dist", "other-pkg", "2.0",
                       {"other_pkg/__init__.py": "X = 1\n"})
    final = tmp_path / "entry"
    destdir = tmp_path / "dest"
    install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
    tree = destdir / final.relative_to(final.anchor)
    assert (tree / "other_pkg" / "__init__.py").read_text() == "X = 1\n"
    assert code_filename(pyc(tree / "other_pkg" / "__init__.py")) == str(
        final / "other_pkg" / "__init__.py")
    assert (tree / "other_pkg-2.0.dist-info" / "INSTALLER").read_bytes() == b"carton\n"


@pytest.mark.parametrize("victim", ["demo/__init__.py", f"{DATA}/scripts/demo-run",
                                    f"{DATA}/purelib/extra_mod.py", f"{DIST_INFO}/METADATA"])
def test_tampered_wheel_writes_nothing(tmp_path: Path, victim: str) -> None:
    data = MEMBERS[victim][0]
    changed = data + b"\n"  # one byte more, same everything else
    wheel = build(tmp_path / "dist", written={victim: changed})
    final = tmp_path / "cache" / "entry"
    destdir = tmp_path / "work" / "dest"
    with pytest.raises(WheelError, match="does not match its RECORD") as info:
        install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
    assert victim in str(info.value)
    assert not destdir.exists()
    assert not final.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist"]


def test_unlisted_member_writes_nothing(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dist", "demo", extra_members={"evil.py": b"boom()\n"})
    destdir = tmp_path / "dest"
    with pytest.raises(WheelError, match="not listed in RECORD"):
        install_wheel(wheel, wheel.name, tmp_path / "entry", destdir, INTERPRETER)
    assert not destdir.exists()
    assert not (tmp_path / "entry").exists()


# ---------------------------------------------------------------- planted links (A4)


@pytest.mark.parametrize("plant", ["file", "folder"])
def test_a_symlink_planted_in_the_work_folder_is_never_written_through(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plant: str) -> None:
    wheel = make_wheel(tmp_path / "w", "demo", "1.0",
                       files={"demo/__init__.py": "VALUE = 1\n", "demo/sub/mod.py": "X = 2\n"})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mod.py").write_text("untouched\n")
    final, destdir = tmp_path / "final", tmp_path / "dest"
    real_mkdir = Path.mkdir

    def mkdir_then_plant(self: Path, *args: object, **kwargs: object) -> None:
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]
        if plant == "file" and self.name == "sub" and self.parent.name == "demo":
            (self / "mod.py").symlink_to(outside / "mod.py")
        if (plant == "folder" and self.name == "demo" and destdir in self.parents
                and not self.is_symlink()):
            self.rmdir()
            self.symlink_to(outside, target_is_directory=True)

    monkeypatch.setattr(Path, "mkdir", mkdir_then_plant)
    with pytest.raises((FileExistsError, WheelError)):
        install_wheel(wheel, wheel.name, final, destdir, sys.executable)
    assert (outside / "mod.py").read_text() == "untouched\n"
    assert sorted(p.name for p in outside.iterdir()) == ["mod.py"]


def test_setuid_and_odd_modes_become_plain_modes(tmp_path: Path) -> None:
    """THREATS A3: only the exec bit of a member's mode survives."""
    from .test_wheelcheck import members, write_zip

    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = []
    for name, data in members({"demo/__init__.py": b"", "demo/tool.py": b"",
                               "demo/plain.py": b""}):
        info = zipfile.ZipInfo(name)
        info.external_attr = {"demo/tool.py": 0o106777, "demo/plain.py": 0}.get(
            name, 0o100644) << 16
        entries.append((info, data))
    wheel = write_zip(tmp_path / "w" / "demo-1.0-py3-none-any.whl", entries)
    final, destdir = tmp_path / "final", tmp_path / "dest"
    install_wheel(wheel, wheel.name, final, destdir, sys.executable)
    tree = destdir / final.relative_to(final.anchor)
    tool = os.stat(tree / "demo" / "tool.py").st_mode
    assert tool & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX) == 0
    assert tool & 0o777 == 0o755 & ~current_umask()
    assert os.stat(tree / "demo" / "plain.py").st_mode & 0o777 == 0o644 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_modules_are_compiled_by_helper_processes_too(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Helpers compile beside the installing thread; each .pyc names the final path."""
    from carton_hook import bytecode

    compiler = bytecode.Compiler(helpers=2)
    monkeypatch.setattr(bytecode, "_compiler", compiler)
    compiler.start()
    wait_for(lambda: compiler.ready == 2)
    files = {f"many/m{i:03d}.py": f"VALUE = {i}\n" * 200 for i in range(120)}
    files["many/__init__.py"] = ""
    files["many/broken.py"] = "def (:\n"  # does not compile: skipped, as pip does
    wheel = make_wheel(tmp_path / "w", "many", "1.0", files)
    final, destdir = tmp_path / "final", tmp_path / "dest"
    install_wheel(wheel, wheel.name, final, destdir, sys.executable)
    tree = destdir / final.relative_to(final.anchor)
    assert compiler.helped > 0
    for i in range(120):
        compiled = pyc(tree / "many" / f"m{i:03d}.py")
        assert code_filename(compiled) == str(final / "many" / f"m{i:03d}.py")
    assert not list((tree / "many" / "__pycache__").glob("broken.*"))


@pytest.mark.parametrize("count", [1, 2, 5, 40])
def test_a_helper_that_dies_loses_no_module(tmp_path: Path, count: int) -> None:
    """Whether the helper's death shows when its feeder writes, flushes or reads, every
    module is compiled and `compile` returns (it once waited forever)."""
    import threading

    from carton_hook import bytecode

    for attempt in range(5):
        compiler = bytecode.Compiler(helpers=1)
        compiler.start()
        wait_for(lambda c=compiler: c.ready == 1)  # type: ignore[misc]
        compiler.compile([])  # nothing to do: returns at once
        sources = []
        for i in range(count):
            path = tmp_path / f"a{attempt}" / f"m{i:02d}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(f"VALUE = {i}\n")
            sources.append((str(path), f"/final/m{i:02d}.py"))
        kill_helpers()
        done = threading.Thread(target=compiler.compile, args=(sources,), daemon=True)
        done.start()
        done.join(timeout=60)
        assert not done.is_alive(), "compile() never returned"
        assert compiler.helped == 0
        for path, final in sources:
            assert code_filename(pyc(Path(path))) == final


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def kill_helpers() -> None:
    """SIGKILL this process's compile helpers (children running `python -I -S -c`)."""
    import signal

    mine = str(os.getpid())
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat_file.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields[1] == mine and b"-S" in cmdline and b"-I" in cmdline:
            os.kill(int(stat_file.parent.name), signal.SIGKILL)
