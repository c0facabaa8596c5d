"""A wheel of the plain form is installed without installer (plainwheel.py), into the
same tree installer writes: each file's path, bytes and mode, and the installed RECORD,
byte for byte; every other wheel goes to installer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from installer.scripts import Script
from installer.utils import parse_entrypoints

from carton_hook.errors import WheelError
from carton_hook.formats.wheelcheck import check_wheel
from carton_hook.installing import plainwheel
from carton_hook.installing.unpack import install_wheel

from ..factory import demo_wheel

INTERPRETER = "/opt/carton-test/bin/python3"
DIST_INFO = "demo-1.0.dist-info"
METADATA = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
WHEEL = b"Wheel-Version: 1.0\nGenerator: carton-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
ENTRY_POINTS = (b"[console_scripts]\ndemo-run = demo.cli:main\ndemo_b=demo:run.go [extra]\n\n"
                b"# a comment\n[gui_scripts]\ndemo-gui = demo.gui : start\n"
                b"[demo.plugins]\nX101 = demo.plugin:Check\n")

def entry_points(text: bytes) -> dict[str, tuple[bytes, int]]:
    """A wheel's `entry_points.txt` member (demo_wheel's form)."""
    return {f"{DIST_INFO}/entry_points.txt": (text, 0o644)}


PLAIN: dict[str, tuple[bytes, int]] = {
    "demo/__init__.py": (b"VALUE = 42\n", 0o644),
    "demo/sub/__init__.py": (b"", 0o644),
    "demo/sub/helper.py": (b"def helper():\n    return 'help'\n", 0o644),
    "demo/tool.sh": (b"#!/bin/sh\necho tool\n", 0o755),
    "demo/odd,name \u00e9.txt": (b"quoted in RECORD\n", 0o644),
    "demo/__pycache__/helper.cpython-311.pyc": (b"not bytecode\n", 0o644),
    "top_module.py": (b"TOP = 1\n", 0o644),
    f"{DIST_INFO}/licenses/LICENSE": (b"MIT\n", 0o644),
    f"{DIST_INFO}/entry_points.txt": (ENTRY_POINTS, 0o644),
    f"{DIST_INFO}/METADATA": (METADATA, 0o644),
    f"{DIST_INFO}/WHEEL": (WHEEL, 0o644),
}


def build(directory: Path, members: dict[str, tuple[bytes, int]], *,
          written: dict[str, bytes] | None = None, rows: list[list[str]] | None = None) -> Path:
    return demo_wheel(directory, members, written=written, rows=rows)


def tree_of(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file below `root`: its mode and bytes."""
    return {p.relative_to(root).as_posix(): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def installed(tmp_path: Path, wheel: Path, name: str, *, by_installer: bool,
              monkeypatch: pytest.MonkeyPatch, interpreter: str = INTERPRETER) -> Path:
    """The tree `install_wheel` writes for `wheel`, by installer or as it chooses."""
    with monkeypatch.context() as patch:
        if by_installer:
            patch.setattr(plainwheel, "plain_scripts", lambda *_: None)
        final = tmp_path / name / "final"
        destdir = tmp_path / name / "dest"
        install_wheel(wheel, wheel.name, final, destdir, interpreter)
    return destdir / final.relative_to(final.anchor)


def test_plain_wheels_are_installed_as_installer_installs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = build(tmp_path / "dist", PLAIN)
    info = check_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        assert plainwheel.plain_scripts(info, zf.namelist(), INTERPRETER) == [
            plainwheel.Script("demo-run", "demo.cli", "main"),
            plainwheel.Script("demo_b", "demo", "run.go"),
            plainwheel.Script("demo-gui", "demo.gui", "start")]
    ours = tree_of(installed(tmp_path, wheel, "ours", by_installer=False,
                             monkeypatch=monkeypatch))
    theirs = tree_of(installed(tmp_path, wheel, "installer", by_installer=True,
                               monkeypatch=monkeypatch))
    assert ours == theirs
    assert "bin/demo-gui" in ours and "demo/__pycache__/helper.cpython-311.pyc" not in ours
    assert ours["demo/tool.sh"][0] & 0o111 and not ours["demo/__init__.py"][0] & 0o111
    assert b'"demo/odd,name \xc3\xa9.txt"' in ours[f"{DIST_INFO}/RECORD"][1]


def test_installers_script_is_what_is_written() -> None:
    for section in ("console", "gui"):
        script = Script("demo-run", "demo.cli", "app.main", section)  # type: ignore[arg-type]
        assert plainwheel.script_bytes(plainwheel.Script("demo-run", "demo.cli", "app.main"),
                                       INTERPRETER) == script.generate(INTERPRETER, "posix")[1]


def test_an_installed_console_script_runs(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    members = {
        "demo/__init__.py": (b"", 0o644),
        "demo/cli.py": (b"import sys\ndef main():\n    print('ran', sys.argv[1:])\n", 0o644),
        f"{DIST_INFO}/entry_points.txt": (b"[console_scripts]\ndemo-run = demo.cli:main\n",
                                          0o644),
        f"{DIST_INFO}/METADATA": (METADATA, 0o644),
        f"{DIST_INFO}/WHEEL": (WHEEL, 0o644),
    }
    wheel = build(tmp_path / "dist", members)
    final = tmp_path / "final"
    destdir = tmp_path / "dest"
    install_wheel(wheel, wheel.name, final, destdir, sys.executable)
    tree = destdir / final.relative_to(final.anchor)
    tree.rename(final)  # where the script's paths say it is
    env = {**os.environ, "PYTHONPATH": str(final)}
    done = subprocess.run([final / "bin" / "demo-run", "x"], capture_output=True, text=True,
                          env=env, check=True, timeout=60)
    assert done.stdout == "ran ['x']\n"


@pytest.mark.parametrize(("change", "why"), [
    ({"demo-1.0.data/purelib/extra.py": (b"", 0o644)}, "a .data folder"),
    ({f"{DIST_INFO}/INSTALLER": (b"pip\n", 0o644)}, "an INSTALLER of its own"),
    (entry_points(b"[console_scripts]\n  a = b:c\n"), "an indented line"),
    (entry_points(b"[console_scripts]\na = b:c\nd = e:f\n\tg\n"), "a continuation line"),
    (entry_points(b"[DEFAULT]\nx = y:z\n[console_scripts]\na = b:c\n"), "a DEFAULT section"),
    (entry_points(b"[console_scripts]\na = b:c%(x)s\n"), "interpolation"),
    (entry_points(b"[console_scripts]\na = b:c\na = d:e\n"), "a duplicate option"),
    (entry_points(b"[console_scripts]\na = b:c\n[gui_scripts]\na = d:e\n"),
     "one script name twice"),
    (entry_points(b"[console_scripts]\na = b\n"), "an entry point with no attribute"),
    (entry_points(b"[console_scripts]\n../a = b:c\n"), "a script name with a slash"),
    (entry_points(b"a = b:c\n"), "an option before a section"),
    (entry_points(b"[console_scripts]\r\na = b:c\r\n"), "CRLF line ends"),
])
def test_other_wheels_are_left_to_installer(tmp_path: Path, change: dict[str, tuple[bytes, int]],
                                            why: str) -> None:
    members = {name: value for name, value in PLAIN.items() if "entry_points" not in name}
    wheel = build(tmp_path / "dist", {**members, **change})
    with zipfile.ZipFile(wheel) as zf:
        assert plainwheel.plain_scripts(check_wheel(wheel), zf.namelist(), INTERPRETER) is None, why


def test_a_wheel_with_scripts_for_a_long_or_spaced_interpreter_is_left_to_installer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = build(tmp_path / "dist", PLAIN)
    info = check_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf:
        for interpreter in ("/opt/my python/bin/python3", "/opt/" + "x" * 130 + "/python"):
            assert plainwheel.plain_scripts(info, zf.namelist(), interpreter) is None
    spaced = installed(tmp_path, wheel, "spaced", by_installer=False, monkeypatch=monkeypatch,
                       interpreter="/opt/my python/bin/python3")
    assert (spaced / "bin" / "demo-run").read_bytes().startswith(b"#!/bin/sh\n")


def test_a_wheel_whose_record_is_not_sha256_is_left_to_installer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import hashlib

    rows = [[name, "sha384=" + base64.urlsafe_b64encode(hashlib.sha384(data).digest())
             .rstrip(b"=").decode(), str(len(data))] for name, (data, _) in PLAIN.items()]
    wheel = build(tmp_path / "dist", PLAIN, rows=rows)
    with zipfile.ZipFile(wheel) as zf:
        assert plainwheel.plain_scripts(check_wheel(wheel), zf.namelist(), INTERPRETER) is None
    tree = installed(tmp_path, wheel, "ours", by_installer=False, monkeypatch=monkeypatch)
    assert b"sha256=" in (tree / DIST_INFO / "RECORD").read_bytes()  # installer's rehash


@pytest.mark.parametrize("text", [
    ENTRY_POINTS.decode(),
    "[console_scripts]\na=b:c\n",
    "[console_scripts]\na = b.c : d.e [x, y]\n; comment\n# another\n\n[other]\nk = v = w\n",
    "[gui_scripts]\nname.with.dots = m:f\n[console_scripts]\nz = m:g\n",
    "[console_scripts]\na = b:c\nA = b:d\n",
    "",
    "[nothing]\n",
])
def test_entry_points_read_as_installer_reads_them(text: str) -> None:
    ours = plainwheel._scripts(text)
    assert ours is not None
    theirs = [(name, module, attr) for name, module, attr, _ in parse_entrypoints(text)]
    assert [tuple(script) for script in ours] == theirs


@pytest.mark.parametrize("victim", ["demo/__init__.py", "demo/tool.sh",
                                    "demo/__pycache__/helper.cpython-311.pyc",
                                    f"{DIST_INFO}/METADATA"])
def test_a_tampered_plain_wheel_writes_nothing(tmp_path: Path, victim: str) -> None:
    wheel = build(tmp_path / "dist", PLAIN, written={victim: PLAIN[victim][0] + b"\n"})
    final = tmp_path / "cache" / "entry"
    destdir = tmp_path / "work" / "dest"
    with pytest.raises(WheelError, match="does not match its RECORD") as info:
        install_wheel(wheel, wheel.name, final, destdir, INTERPRETER)
    assert victim in str(info.value)
    assert not destdir.exists() and not final.exists()


# Run in a fresh interpreter: a plain wheel checked and installed, then what was imported.
IMPORTS_OF_A_PLAIN_INSTALL = """
import sys
from pathlib import Path
from carton_hook.installing.unpack import install_wheel
wheel, root = Path(sys.argv[1]), Path(sys.argv[2])
install_wheel(wheel, wheel.name, root / "final", root / "dest", sys.executable)
print(sorted(name for name in ("installer", "dataclasses", "configparser") if name in sys.modules))
"""


def test_a_plain_wheel_is_checked_and_installed_without_installer_or_dataclasses(
        tmp_path: Path) -> None:
    wheel = build(tmp_path / "dist", PLAIN)
    done = subprocess.run([sys.executable, "-c", IMPORTS_OF_A_PLAIN_INSTALL, str(wheel),
                           str(tmp_path)], capture_output=True, text=True, check=True,
                          timeout=60)
    assert done.stdout == "[]\n"
    other = build(tmp_path / "other", {**PLAIN, "demo-1.0.data/purelib/x.py": (b"", 0o644)})
    done = subprocess.run([sys.executable, "-c", IMPORTS_OF_A_PLAIN_INSTALL, str(other),
                           str(tmp_path / "o")], capture_output=True, text=True, check=True,
                          timeout=60)
    assert done.stdout == "['configparser', 'dataclasses', 'installer']\n"
