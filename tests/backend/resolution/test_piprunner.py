"""pip run with another machine's marker environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carton_backend.resolution.platforms import parse_platform

from ...factory import make_wheel
from ...indexserver import PackageIndex


def run(env: dict[str, str], menv: object, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carton_backend.resolution.piprunner",
                           json.dumps(menv), *args],
                          env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("platform", "expected"), [
    ("x86_64-pc-windows-msvc", ["app", "winonly"]),
    ("aarch64-apple-darwin", ["app", "maconly", "posixonly"]),
    ("aarch64-manylinux_2_28", ["app", "posixonly"]),
])
def test_every_marker_is_the_targets(tmp_path: Path, private: PackageIndex,
                                     hermetic_env: dict[str, str], platform: str,
                                     expected: list[str]) -> None:
    """The requirements' own markers, each dependency's, and the report's environment."""
    wheels = tmp_path / "wheels"
    private.add(make_wheel(wheels, "app", "1.0", requires=[
        "winonly ; sys_platform == 'win32'", "posixonly ; os_name == 'posix'"]))
    for name in ("winonly", "posixonly", "maconly"):
        private.add(make_wheel(wheels, name, "1.0"))
    (tmp_path / "req.txt").write_text("app\nmaconly ; platform_system == 'Darwin'\n")
    menv = parse_platform(platform).marker_environment("3.12")
    report = tmp_path / "report.json"
    proc = run(hermetic_env, menv, "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(report), "-r", str(tmp_path / "req.txt"))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(report.read_text())
    assert data["environment"] == menv
    assert sorted(i["metadata"]["name"] for i in data["install"]) == expected


def test_a_marker_environment_that_is_not_an_object_of_strings_is_refused(
        hermetic_env: dict[str, str]) -> None:
    proc = run(hermetic_env, {"sys_platform": 1}, "--version")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("carton: error: the marker environment must be a JSON "
                                   "object of strings")
