"""Against the real index: the wheels carton writes without installer (the plain form,
carton_hook/installing/plainwheel.py) come out as installer writes them, file for file,
byte for byte and mode for mode, console scripts included; the others go to installer."""

from __future__ import annotations

import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from carton_hook.formats.wheelcheck import check_wheel
from carton_hook.installing import plainwheel
from carton_hook.installing.unpack import install_wheel

from .conftest import once

# Pure and platform wheels, with console scripts (docutils has eleven) and without, one
# with a `.data/` folder (sympy's man page), as the index has them today.
PROJECTS = ["requests", "urllib3", "idna", "certifi", "charset-normalizer", "six",
            "docutils", "pygments", "tqdm", "markdown-it-py", "click", "attrs",
            "typing-extensions", "packaging", "wheel", "mpmath", "sympy", "pyyaml",
            "markupsafe", "jinja2"]


def tree_of(root: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(root).as_posix(): (stat.S_IMODE(p.stat().st_mode), p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def installed(tmp_path: Path, wheel: Path, name: str, *, by_installer: bool,
              monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, bytes]]:
    with monkeypatch.context() as patch:
        if by_installer:
            patch.setattr(plainwheel, "plain_scripts", lambda *_: None)
        final = tmp_path / name / "final"
        destdir = tmp_path / name / "dest"
        install_wheel(wheel, wheel.name, final, destdir, sys.executable)
    return tree_of(destdir / final.relative_to(final.anchor))


@once
def test_real_plain_wheels_are_written_as_installer_writes_them(
        tmp_path: Path, real_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                           "--only-binary", ":all:", "-d", str(wheels), *PROJECTS],
                          env=real_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    plain: list[str] = []
    with_scripts: list[str] = []
    to_installer: list[str] = []
    for wheel in sorted(wheels.glob("*.whl")):
        info = check_wheel(wheel)
        with zipfile.ZipFile(wheel) as zf:
            scripts = plainwheel.plain_scripts(info, zf.namelist(), sys.executable)
        if scripts is None:
            to_installer.append(wheel.name)
            continue
        plain.append(wheel.name)
        if scripts:
            with_scripts.append(wheel.name)
        ours = installed(tmp_path, wheel, f"{wheel.name}-ours", by_installer=False,
                         monkeypatch=monkeypatch)
        theirs = installed(tmp_path, wheel, f"{wheel.name}-installer", by_installer=True,
                           monkeypatch=monkeypatch)
        assert ours.keys() == theirs.keys(), wheel.name
        for path in ours:
            assert ours[path] == theirs[path], (wheel.name, path)
    assert len(plain) + len(to_installer) == len(PROJECTS)
    assert len(plain) >= 15, (plain, to_installer)
    assert len(with_scripts) >= 5, with_scripts
    assert any(name.startswith("sympy-") for name in to_installer), to_installer
