"""carton_backend.wheels.wheelbuild: one wheel built by `pip wheel` from an sdist or a folder, its
timestamps fixed by SOURCE_DATE_EPOCH (1980 when unset); each failure one line."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from carton_backend.errors import WheelBuildError
from carton_backend.resolution.environment import Target
from carton_backend.wheels.wheelbuild import build_wheel

from ...factory import make_sdist, write_source_tree

HERE = Target(f"{sys.version_info[0]}.{sys.version_info[1]}", building=True)

pytestmark = pytest.mark.usefixtures("use_hermetic_env")  # pip sees loopback indexes only


def stamps(wheel: Path) -> set[tuple[int, ...]]:
    with zipfile.ZipFile(wheel) as zf:
        return {i.date_time for i in zf.infolist()}


def test_a_folder_builds_with_1980_timestamps_when_no_epoch_is_set(tmp_path: Path) -> None:
    tree = write_source_tree(tmp_path / "libs" / "delta", "delta", "0.3",
                             files={"delta/__init__.py": "VALUE = 3\n"})
    out = tmp_path / "out"
    wheel = build_wheel(str(tree), HERE, out, cwd=tmp_path)
    assert wheel == out / "delta-0.3-py3-none-any.whl"
    assert [p.name for p in out.iterdir()] == [wheel.name]  # its temporary folder is gone
    assert stamps(wheel) == {(1980, 1, 1, 0, 0, 0)}
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read("delta/__init__.py") == b"VALUE = 3\n"


def test_an_sdist_builds_with_the_time_source_date_epoch_says(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = make_sdist(tmp_path / "sdists", "gamma-lib", "1.0")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    wheel = build_wheel(str(sdist), HERE, tmp_path / "out", cwd=tmp_path)
    assert wheel.name == "gamma_lib-1.0-py3-none-any.whl"
    assert stamps(wheel) == {(2023, 11, 14, 22, 13, 20)}


def test_a_build_that_fails_is_one_line_naming_the_source_and_the_python(
        tmp_path: Path) -> None:
    tree = write_source_tree(tmp_path / "broken", "broken")
    backend = tree / "intree_backend.py"
    backend.write_text(backend.read_text().replace(
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n",
        "def build_wheel(directory, config_settings=None, metadata_directory=None):\n"
        "    raise RuntimeError('this project does not build')\n"))
    with pytest.raises(WheelBuildError) as info:
        build_wheel(str(tree), HERE, tmp_path / "out", cwd=tmp_path)
    message = str(info.value)
    assert message.startswith(f"cannot build a wheel from {tree} for {HERE.label}: ")
    assert "\n" not in message
    assert list((tmp_path / "out").iterdir()) == []


def test_another_python_is_handed_to_pip(tmp_path: Path) -> None:
    """pip builds for the interpreter it is given (`--python`): one that is not there
    fails the build, naming it."""
    tree = write_source_tree(tmp_path / "delta", "delta")
    target = Target("3.99", executable=str(tmp_path / "no-such-python3.99"))
    with pytest.raises(WheelBuildError) as info:
        build_wheel(str(tree), target, tmp_path / "out", cwd=tmp_path)
    assert str(info.value).startswith(
        f"cannot build a wheel from {tree} for Python 3.99 ({target.executable}): ")
    assert "no-such-python3.99" in str(info.value).split(": ", 1)[1]
