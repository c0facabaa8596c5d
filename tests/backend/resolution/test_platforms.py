"""Target platforms by uv's names: marker environments and the wheel tags each installs."""

from __future__ import annotations

import platform
import sys

import pytest
from packaging.tags import sys_tags

from carton_backend.resolution.platforms import PlatformError, parse_platform


@pytest.mark.parametrize(("name", "os", "arch", "version"), [
    ("linux", "manylinux", "x86_64", (2, 17)),
    ("x86_64-unknown-linux-gnu", "manylinux", "x86_64", (2, 17)),
    ("aarch64-unknown-linux-gnu", "manylinux", "aarch64", (2, 17)),
    ("x86_64-manylinux2014", "manylinux", "x86_64", (2, 17)),
    ("aarch64-manylinux_2_28", "manylinux", "aarch64", (2, 28)),
    ("x86_64-manylinux_2_40", "manylinux", "x86_64", (2, 40)),
    ("x86_64-unknown-linux-musl", "musllinux", "x86_64", (1, 2)),
    ("macos", "macos", "aarch64", (13, 0)),
    ("x86_64-apple-darwin", "macos", "x86_64", (13, 0)),
    ("windows", "windows", "x86_64", (0, 0)),
    ("i686-pc-windows-msvc", "windows", "i686", (0, 0)),
])
def test_names_as_uv_gives_them(name: str, os: str, arch: str, version: tuple[int, int]) -> None:
    target = parse_platform(name)
    assert (target.name, target.os, target.arch, target.version) == (name, os, arch, version)


@pytest.mark.parametrize("name", ["x86_64-manylinux_2_12", "wasm32-pyodide2024",
                                  "aarch64-linux-android", "riscv64-unknown-linux", "Linux", ""])
def test_other_names_are_refused_with_the_known_ones(name: str) -> None:
    with pytest.raises(PlatformError) as info:
        parse_platform(name)
    assert repr(name) in str(info.value)
    if "manylinux_2_12" not in name:
        assert "x86_64-pc-windows-msvc" in str(info.value)


@pytest.mark.parametrize(("name", "expected"), [
    ("windows", {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt",
                 "platform_machine": "AMD64"}),
    ("aarch64-pc-windows-msvc", {"sys_platform": "win32", "platform_machine": "ARM64"}),
    ("aarch64-apple-darwin", {"sys_platform": "darwin", "platform_system": "Darwin",
                              "os_name": "posix", "platform_machine": "arm64"}),
    ("x86_64-apple-darwin", {"platform_machine": "x86_64"}),
    ("aarch64-manylinux_2_28", {"sys_platform": "linux", "platform_system": "Linux",
                                "platform_machine": "aarch64"}),
])
def test_the_marker_environment_is_the_targets(name: str, expected: dict[str, str]) -> None:
    menv = parse_platform(name).marker_environment("3.12")
    assert {k: menv[k] for k in expected} == expected
    assert (menv["python_version"], menv["python_full_version"],
            menv["implementation_name"]) == ("3.12", "3.12.0", "cpython")
    assert sorted(menv) == sorted(
        {"implementation_name", "implementation_version", "os_name", "platform_machine",
         "platform_python_implementation", "platform_release", "platform_system",
         "platform_version", "python_full_version", "python_version", "sys_platform"})


def test_manylinux_goes_down_to_the_oldest_level_with_the_legacy_names() -> None:
    x86 = parse_platform("x86_64-manylinux_2_28").platform_tags()
    assert x86[0] == "manylinux_2_28_x86_64" and x86[-1] == "manylinux1_x86_64"
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64"} <= set(x86)
    assert "manylinux_2_29_x86_64" not in x86
    arm = parse_platform("aarch64-manylinux_2_28").platform_tags()
    assert arm[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert parse_platform("aarch64-unknown-linux-musl").platform_tags() == [
        "musllinux_1_2_aarch64", "musllinux_1_1_aarch64", "musllinux_1_0_aarch64"]
    assert parse_platform("windows").platform_tags() == ["win_amd64"]


def test_macos_takes_older_releases_and_universal2_not_the_other_arch() -> None:
    tags = parse_platform("aarch64-apple-darwin").platform_tags()
    assert tags[:2] == ["macosx_13_0_arm64", "macosx_13_0_universal2"]
    assert "macosx_11_0_arm64" in tags and not any("x86_64" in t for t in tags)


def test_tags_put_the_interpreters_own_abi_first_then_abi3_then_pure() -> None:
    tags = [str(t) for t in parse_platform("windows").tags("3.12")]
    assert tags[0] == "cp312-cp312-win_amd64"
    assert tags.index("cp312-abi3-win_amd64") < tags.index("cp311-abi3-win_amd64")
    assert "py3-none-any" in tags and "cp313-cp313-win_amd64" not in tags


@pytest.mark.skipif(platform.machine() != "x86_64" or platform.libc_ver()[0] != "glibc",
                    reason="compared with this machine's own tags: glibc x86_64 only")
def test_on_this_machine_the_tags_are_the_ones_packaging_computes_here() -> None:
    """The same tags, in the same order, as `sys_tags()` gives this interpreter (but the
    `linux_x86_64` tags of wheels built for this machine alone)."""
    glibc = int(platform.libc_ver()[1].split(".")[1])
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    mine = [str(t) for t in parse_platform(f"x86_64-manylinux_2_{glibc}").tags(here)]
    assert mine == [str(t) for t in sys_tags() if not str(t).endswith("-linux_x86_64")]
