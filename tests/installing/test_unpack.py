"""install_wheel(): a checked wheel installed as if into its cache entry, written below a
staging folder."""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest

from carton_hook.errors import WheelError
from carton_hook.installing.unpack import install_wheel

from ..factory import demo_wheel, make_wheel

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
    return demo_wheel(directory, members, written=written)


def install(tmp_path: Path, wheel: Path) -> tuple[Path, Path, Path]:
    """Install `wheel`; return (final, destdir, the tree as written below destdir)."""
    final = tmp_path / "cache" / ("ab" * 32)
    destdir = tmp_path / "work" / "dest"
    install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
    return final, destdir, destdir / final.relative_to(final.anchor)


def files_below(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


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


def test_nothing_is_compiled_at_install(tmp_path: Path) -> None:
    """Modules are compiled on their first import (pycache), not before publishing."""
    _, _, tree = install(tmp_path, build(tmp_path / "dist"))
    assert not [p for p in files_below(tree) if "__pycache__" in p or p.endswith(".pyc")]


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
    assert (tree / "other_pkg-2.0.dist-info" / "INSTALLER").read_bytes() == b"carton\n"


def test_the_archive_is_listed_once_for_checking_and_installing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installer reads the archive the checks read, from the same member list: a
    big wheel's list is tens of milliseconds (torch: 12,248 members, ~40 ms)."""
    listed: list[str] = []
    real = zipfile.ZipFile._RealGetContents  # type: ignore[attr-defined]

    def counting(self: zipfile.ZipFile) -> None:
        listed.append(str(self.filename))
        real(self)

    monkeypatch.setattr(zipfile.ZipFile, "_RealGetContents", counting)
    wheel = build(tmp_path / "dist")
    _, _, tree = install(tmp_path, wheel)
    assert (tree / "demo" / "__init__.py").read_bytes() == b"VALUE = 42\n"
    assert listed == [str(wheel)]


@pytest.mark.parametrize("victim", ["demo/__init__.py", f"{DATA}/scripts/demo-run",
                                    f"{DATA}/purelib/extra_mod.py", "demo/data.txt",
                                    "demo/tool.sh"])
def test_a_member_changed_in_place_is_found_while_installing(tmp_path: Path,
                                                             victim: str) -> None:
    """Same size, one byte flipped: only its hash tells, and it is checked in the pass
    that writes (each member is decompressed once); what was written is removed."""
    data = MEMBERS[victim][0]
    changed = data[:-2] + bytes([data[-2] ^ 0x20]) + data[-1:]
    assert len(changed) == len(data) and changed != data
    wheel = build(tmp_path / "dist", written={victim: changed})
    final = tmp_path / "cache" / "entry"
    destdir = tmp_path / "work" / "dest"
    with pytest.raises(WheelError, match="does not match its RECORD") as info:
        install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
    assert victim in str(info.value)
    assert not destdir.exists()
    assert not final.exists()


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
    real_mkdir = os.mkdir

    def mkdir_then_plant(path: str, *args: object, **kwargs: object) -> None:
        real_mkdir(path, *args, **kwargs)  # type: ignore[arg-type]
        self = Path(path)
        if plant == "file" and self.name == "sub" and self.parent.name == "demo":
            (self / "mod.py").symlink_to(outside / "mod.py")
        if (plant == "folder" and self.name == "demo" and destdir in self.parents
                and not self.is_symlink()):
            self.rmdir()
            self.symlink_to(outside, target_is_directory=True)

    monkeypatch.setattr(os, "mkdir", mkdir_then_plant)
    with pytest.raises((FileExistsError, WheelError)):
        install_wheel(wheel, wheel.name, final, destdir, sys.executable)
    assert (outside / "mod.py").read_text() == "untouched\n"
    assert sorted(p.name for p in outside.iterdir()) == ["mod.py"]



@pytest.mark.parametrize("plant", ["file", "folder"])
def test_the_second_process_never_writes_through_a_planted_symlink(
        tmp_path: Path, plant: str) -> None:
    """What the helper that writes part of a big wheel runs (`write_members`), with a
    link planted where it writes: it fails instead of writing where the link points."""
    from carton_hook.formats.wheelcheck import check_wheel
    from carton_hook.installing import splitunpack

    wheel = make_wheel(tmp_path / "w", "demo", "1.0",
                       files={"demo/__init__.py": "VALUE = 1\n", "demo/sub/mod.py": "X = 2\n"})
    record = check_wheel(wheel, wheel.name, contents=False).record
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "mod.py").write_text("untouched\n")
    root = tmp_path / "dest"
    base = root / "entry"
    if plant == "file":
        (base / "demo" / "sub").mkdir(parents=True)
        (base / "demo" / "sub" / "mod.py").symlink_to(outside / "mod.py")
    else:
        base.mkdir(parents=True)
        (base / "demo").symlink_to(outside, target_is_directory=True)
    members = [(name, "sha256", record[name].hash_.value, record[name].size)
               for name in ("demo/__init__.py", "demo/sub/mod.py")]
    with pytest.raises((FileExistsError, ValueError)):
        splitunpack.write_members(str(wheel), str(base), str(root), members)
    assert (outside / "mod.py").read_text() == "untouched\n"
    assert sorted(p.name for p in outside.iterdir()) == ["mod.py"]

def test_setuid_and_odd_modes_become_plain_modes(tmp_path: Path) -> None:
    """THREATS A3: only the exec bit of a member's mode survives."""
    from ..wheelzip import members, write_zip

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


@pytest.mark.parametrize("tampered", [False, True])
def test_a_member_the_installer_skips_is_checked_after_it(tmp_path: Path,
                                                         tampered: bool) -> None:
    """installer does not install a member in `__pycache__` (numpy 2.2.6's cp310 wheel
    has one); it is still checked against RECORD, as every member is."""
    from ..factory import make_wheel

    pyc_member = "demo/__pycache__/x.cpython-310.pyc"
    wheel = make_wheel(tmp_path / "w", "demo", "1.0", {"demo/__init__.py": "V = 1\n",
                                                        pyc_member: b"\x00" * 40})
    if tampered:
        rewritten = tmp_path / "t" / wheel.name
        rewritten.parent.mkdir()
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(rewritten, "w") as dst:
            for info in src.infolist():
                data = src.read(info)
                dst.writestr(info, b"\x01" * 40 if info.filename == pyc_member else data)
        wheel = rewritten
    final, destdir = tmp_path / "final", tmp_path / "dest"
    if tampered:
        with pytest.raises(WheelError, match=r"__pycache__/x\.cpython-310\.pyc' does not match"):
            install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
        assert not destdir.exists()
    else:
        install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
        tree = destdir / final.relative_to(final.anchor)
        assert (tree / "demo" / "__init__.py").is_file()
        assert not (tree / "demo" / "__pycache__").exists()  # skipped, as installer does


# ---------------------------------------------------------- one wheel, two processes

def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file below `root`: its mode and bytes."""
    return {p.relative_to(root).as_posix(): (stat.S_IMODE(p.lstat().st_mode), p.read_bytes())
            for p in sorted(root.rglob("*")) if not p.is_dir()}


def install_split(tmp_path: Path, wheel: Path, name: str, split_min: int) -> Path:
    final = tmp_path / name / "cache" / ("ab" * 32)
    destdir = tmp_path / name / "dest"
    install_wheel(wheel, wheel.name, final, destdir, INTERPRETER, split_min=split_min)
    return destdir / final.relative_to(final.anchor)


needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2,
                                     reason="a second process unpacks only beside a second core")


@needs_two_cores
def test_a_big_wheel_split_between_two_processes_installs_the_same_tree(
        tmp_path: Path) -> None:
    """Every member, mode and the RECORD written are the ones one process writes. The
    second process may write the root's plain members, biggest first (which of them it
    gets to first varies from run to run; the tests below make it write alone, or fail)."""
    from carton_hook.formats.wheelcheck import check_wheel
    from carton_hook.installing import splitunpack

    wheel = build(tmp_path / "dist")
    record = check_wheel(wheel, wheel.name, contents=False).record
    share = splitunpack.helper_share(record, 1)
    assert share and all(not n.startswith((DIST_INFO, DATA)) for n in share)
    assert [record[n].size for n in share] == sorted((record[n].size for n in share),
                                                     reverse=True)
    one = install_split(tmp_path, wheel, "one", 1 << 60)
    two = install_split(tmp_path, wheel, "two", 1)
    assert snapshot(two) == snapshot(one)


@needs_two_cores
@pytest.mark.parametrize("victim", ["demo/__init__.py", "demo/data.txt", "demo/tool.sh"])
def test_the_second_process_checks_what_it_writes_against_record(
        tmp_path: Path, victim: str) -> None:
    """The helper process alone (nobody else writing): the tampered member is reported
    as a RECORD mismatch, which fails the install (`join`)."""
    from carton_hook.formats.wheelcheck import check_wheel
    from carton_hook.installing import splitunpack

    data = MEMBERS[victim][0]
    changed = data[:-2] + bytes([data[-2] ^ 0x20]) + data[-1:]
    wheel = build(tmp_path / "dist", written={victim: changed})
    record = check_wheel(wheel, wheel.name, contents=False).record
    share = splitunpack.helper_share(record, 1)
    assert victim in share
    root = tmp_path / "dest"
    with zipfile.ZipFile(wheel) as archive:
        proc = splitunpack.start(str(wheel), str(root / "entry"), str(root), share, record,
                                 archive)
    assert proc is not None
    with pytest.raises(WheelError, match="does not match its RECORD") as info:
        splitunpack.join(proc, wheel.name)
    assert victim in str(info.value)


@needs_two_cores
@pytest.mark.parametrize("victim", ["demo/__init__.py", "demo/data.txt", "demo/tool.sh"])
def test_a_tampered_member_fails_a_split_install_whichever_process_writes_it(
        tmp_path: Path, victim: str) -> None:
    data = MEMBERS[victim][0]
    changed = data[:-2] + bytes([data[-2] ^ 0x20]) + data[-1:]
    wheel = build(tmp_path / "dist", written={victim: changed})
    destdir = tmp_path / "work" / "dest"
    with pytest.raises(WheelError, match="does not match its RECORD") as info:
        install_wheel(wheel, wheel.name, tmp_path / "entry", destdir, INTERPRETER,
                      split_min=1)
    assert victim in str(info.value)
    assert not destdir.exists()


@needs_two_cores
@pytest.mark.parametrize("helper", [
    pytest.param(["/nonexistent/python"], id="cannot-start"),
    pytest.param([sys.executable, "-c", "import sys; sys.exit(9)"], id="dies-at-once"),
    pytest.param([sys.executable, "-c", "import sys; sys.stdin.read()"], id="writes-nothing"),
    pytest.param([sys.executable, "-c", "import sys, os, json\n"
                  "job = json.load(sys.stdin)\n"
                  "name = job['members'][0][0]\n"
                  "os.makedirs(os.path.dirname(os.path.join(job['base'], name)), exist_ok=True)\n"
                  "try:\n"
                  "    open(os.path.join(job['base'], name), 'xb').write(b'half')\n"
                  "finally:\n"
                  "    os.kill(os.getpid(), 9)\n"], id="killed-mid-write"),
])
def test_a_second_process_that_fails_leaves_its_members_to_the_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: list[str]) -> None:
    from carton_hook.installing import splitunpack

    wheel = build(tmp_path / "dist")
    one = install_split(tmp_path, wheel, "one", 1 << 60)
    monkeypatch.setattr(splitunpack, "_helper_argv", lambda: helper)
    two = install_split(tmp_path, wheel, "two", 1)
    assert snapshot(two) == snapshot(one)


def test_a_pycache_member_left_out_says_nothing_unless_asked(tmp_path: Path) -> None:
    """installer's warning about it (with a source line) never reaches the user's
    terminal: nothing there to act on. `-v` names it, once."""
    import subprocess
    import sys

    from ..factory import make_wheel

    wheel = make_wheel(tmp_path / "w", "demo", "1.0", {
        "demo/__init__.py": "V = 1\n", "demo/__pycache__/x.cpython-310.pyc": b"\x00" * 40})
    script = ("import sys\n"
              "from pathlib import Path\n"
              "from carton_hook.installing.unpack import install_wheel\n"
              "w = Path(sys.argv[1])\n"
              "install_wheel(w, w.name, w.parent / 'final', w.parent / ('d' + sys.argv[2]),"
              " sys.executable)\n")
    quiet = subprocess.run([sys.executable, "-W", "default", "-c", script, str(wheel), "-q"],
                           capture_output=True, text=True, check=False)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    loud = subprocess.run([sys.executable, "-c", script, str(wheel), "-v"],
                          env={**os.environ, "CARTON_VERBOSE": "1"},
                          capture_output=True, text=True, check=False)
    assert loud.returncode == 0, loud.stderr
    assert ("carton: demo-1.0-py3-none-any.whl: 1 file(s) in __pycache__ left out, as "
            "installer does (checked against RECORD; carton compiles its own): "
            "demo/__pycache__/x.cpython-310.pyc") in loud.stderr
    assert "RuntimeWarning" not in loud.stderr
