"""Sections for other platforms, locked from this machine against the real index: the
same packages at the same versions as uv's resolution for each target (uv is the
oracle), every wheel one the target installs, and a small part of the wheels read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from carton_backend.resolution.platforms import parse_platform

from .conftest import carton, once
from .test_real_index import write_model

# Markers that differ by platform (click < 8.2 pulls colorama on Windows, tzdata only
# where the line says), and packages with a wheel per platform (numpy, PyYAML,
# MarkupSafe).
REQUIREMENTS = ("click<8.2\nnumpy==2.2.6\npyyaml==6.0.2\nmarkupsafe==3.0.2\n"
                'tzdata ; sys_platform == "win32"\n')
PLATFORMS = ["x86_64-manylinux_2_28", "aarch64-manylinux_2_28", "x86_64-unknown-linux-musl",
             "aarch64-apple-darwin", "x86_64-apple-darwin", "x86_64-pc-windows-msvc"]
HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"


def uv_compile(tmp_path: Path, requirements: Path, platform: str, python: str) -> dict[str, str]:
    """uv's resolution for the same target, from PyPI."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    out = tmp_path / f"uv-{platform}-{python}.txt"
    proc = subprocess.run(
        [uv, "pip", "compile", "-q", "--no-config", "--no-python-downloads", "--no-header",
         "--no-annotate", "--python-platform", platform, "--python-version", python,
         "--only-binary", ":all:", "--cache-dir", str(tmp_path / "uv-cache"),
         str(requirements), "-o", str(out)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("==") for line in out.read_text().splitlines()
                if "==" in line and not line.startswith("#"))


def sections(model: Path) -> dict[str, dict[str, Any]]:
    lock = json.loads((model / ".carton" / "carton.lock").read_text())
    return {e["platform"]: e for e in lock["environments"] if e.get("platform")}


def test_each_platform_is_locked_as_uv_resolves_it(tmp_path: Path,
                                                   real_env: dict[str, str]) -> None:
    platforms = ", ".join(f'"{p}"' for p in PLATFORMS)
    model = write_model(tmp_path / "m", REQUIREMENTS, f"platforms = [{platforms}]\n")
    (model / "model.py").write_text("import yaml, numpy, click\n"
                                    "def main():\n    print(yaml.__version__)\n")
    proc = carton(real_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    found = sections(model)
    assert sorted(found) == sorted(PLATFORMS)
    for platform, section in found.items():
        mine = {p["name"]: p["version"] for p in section["packages"]}
        assert mine == uv_compile(tmp_path, model / "requirements.txt", platform, HERE), platform
        assert ("colorama" in mine) is ("windows" in platform)
        assert ("tzdata" in mine) is ("windows" in platform)
        supported = set(parse_platform(platform).tags(HERE))
        for package in section["packages"]:
            (wheel,) = package["wheels"]
            assert not supported.isdisjoint(parse_wheel_filename(wheel["name"])[3]), wheel
            assert wheel["url"].startswith("https://files.pythonhosted.org/")
    # Here, the building interpreter's own section runs it.
    run = subprocess.run([sys.executable, "-m", "carton_hook",
                          str(model / "dist" / "real_model-1.0.carton")],
                         env=real_env, capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout) == (0, "6.0.2\n"), run.stderr


@once
def test_numpy_and_pandas_for_eight_sections_read_a_small_part_of_the_wheels(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    """Windows, macOS arm64 and x86_64, Linux aarch64, each for two Pythons: the wheels'
    directories and metadata, under a tenth of their bytes (a newer pip resolves from the
    index's metadata files without downloading wheels either)."""
    from packaging.version import Version

    if Version(_pip_version()) < Version("25.3"):
        pytest.skip("pip before 25.3 downloads every wheel it resolves, also in a dry run")
    model = write_model(tmp_path / "m", "numpy==2.2.6\npandas==2.2.3\n",
                        'platforms = ["x86_64-pc-windows-msvc", "aarch64-apple-darwin", '
                        '"x86_64-apple-darwin", "aarch64-manylinux_2_28"]\n')
    proc = carton(real_env, "lock", "--platform", "x86_64-pc-windows-msvc",
                  "--platform", "aarch64-apple-darwin", "--platform", "x86_64-apple-darwin",
                  "--platform", "aarch64-manylinux_2_28", "--python", "3.12", model)
    assert proc.returncode == 0, proc.stderr
    reads = [(float(m[1]), float(m[2])) for m in re.finditer(
        r"read ([\d.]+) MB of \d+ wheels' ([\d.]+) MB by byte ranges", proc.stderr)]
    assert len(reads) == 8, proc.stderr
    read, total = sum(r for r, _ in reads), sum(t for _, t in reads)
    assert read < total / 10, (read, total)


def _pip_version() -> str:
    from importlib.metadata import version

    return version("pip")
