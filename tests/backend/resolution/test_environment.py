"""carton_backend.resolution.environment: which interpreters a model is locked for, how a section is
named and marked, and which section serves an interpreter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment

from carton_backend.config import ModelConfig
from carton_backend.errors import BuildError, ConfigError
from carton_backend.resolution.environment import (
    SELECTING_KEYS,
    Target,
    check_interpreter,
    current_marker_environment,
    env_id,
    env_marker,
    section_for,
    targets,
)
from carton_hook.formats.lockfile import Environment, Lock, Package, Wheel

HERE = f"{sys.version_info[0]}.{sys.version_info[1]}"
LINUX_311 = {"implementation_name": "cpython", "python_version": "3.11",
             "sys_platform": "linux", "platform_machine": "x86_64",
             "platform_release": "6.1.0-18-amd64"}


def config(tmp_path: Path, *python: str) -> ModelConfig:
    return ModelConfig(root=tmp_path, name="m", version="1", entrypoint="model:main",
                       python=python)


def fake_python(folder: Path, version: str, script: str) -> Path:
    """`python{version}` on a PATH of its own: a shell script that does what it is told."""
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / f"python{version}"
    exe.write_text(f"#!/bin/sh\n{script}\n")
    exe.chmod(0o755)
    return exe


def test_a_target_is_labelled_with_its_version_and_where_it_is() -> None:
    assert Target("3.11", building=True).label == "Python 3.11"
    assert Target("3.12", executable="/opt/py/bin/python3.12").label == \
        "Python 3.12 (/opt/py/bin/python3.12)"


def test_the_building_interpreter_comes_first_then_the_listed_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = fake_python(tmp_path / "bin", "3.98", "echo 3.98")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    found = targets(config(tmp_path, "3.98", HERE, "3.99"))
    assert found == [Target(HERE, building=True),
                     Target("3.98", executable=str(exe)),
                     Target("3.99", executable=None)]  # listed, not installed


def test_check_interpreter_asks_nothing_of_the_building_one(tmp_path: Path) -> None:
    check_interpreter(Target(HERE, building=True), config(tmp_path))


def test_a_listed_python_that_runs_as_its_version_passes(tmp_path: Path) -> None:
    check_interpreter(Target(HERE, executable=sys.executable), config(tmp_path, HERE))
    exe = fake_python(tmp_path / "bin", "3.98", "echo 3.98")
    check_interpreter(Target("3.98", executable=str(exe)), config(tmp_path, "3.98"))


def test_a_listed_python_not_on_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_interpreter(Target("3.99"), config(tmp_path, "3.99"))
    assert info.value.key == "tool.carton.python"
    assert info.value.path == str(tmp_path / "pyproject.toml")
    assert "lists 3.99, but no python3.99 is on PATH" in str(info.value)


def test_a_python_asked_for_on_the_command_line_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as info:
        check_interpreter(Target("3.99"), config(tmp_path))  # `lock --python 3.99`
    assert not isinstance(info.value, ConfigError)
    assert str(info.value) == ("--python 3.99: no python3.99 is on PATH; install Python 3.99 "
                               "or leave --python 3.99 out")


@pytest.mark.parametrize("script", [
    "echo 3.7",                                        # another Python behind the name
    "echo 'pyenv: python3.98: command not found' >&2; exit 127",  # a shim, not active
    "echo 3.98; exit 1",
], ids=["other-version", "pyenv-shim", "fails"])
def test_a_listed_python_that_does_not_run_as_its_version_is_a_config_error(
        tmp_path: Path, script: str) -> None:
    exe = fake_python(tmp_path / "bin", "3.98", script)
    with pytest.raises(ConfigError) as info:
        check_interpreter(Target("3.98", executable=str(exe)), config(tmp_path, "3.98"))
    assert info.value.key == "tool.carton.python"
    assert f"lists 3.98, but {exe} does not run as Python 3.98" in str(info.value)


def test_a_listed_python_that_cannot_be_started_is_a_config_error(tmp_path: Path) -> None:
    exe = fake_python(tmp_path / "bin", "3.98", "echo 3.98")
    exe.chmod(0o644)  # found by name once, not executable now: OSError when started
    with pytest.raises(ConfigError, match=r"does not run as Python 3\.98"):
        check_interpreter(Target("3.98", executable=str(exe)), config(tmp_path, "3.98"))


@pytest.mark.parametrize(("menv", "expected"), [
    (LINUX_311, "cp311-linux-x86_64"),
    ({**LINUX_311, "implementation_name": "pypy", "python_version": "3.10"},
     "pp310-linux-x86_64"),
    ({**LINUX_311, "implementation_name": "graalpy"}, "gp311-linux-x86_64"),
    ({**LINUX_311, "implementation_name": "rustpython"}, "rustpython311-linux-x86_64"),
    ({"implementation_name": "cpython", "python_version": "3.13", "sys_platform": "darwin",
      "platform_machine": "arm64"}, "cp313-darwin-arm64"),
    ({}, "--"),
])
def test_a_section_id_reads_implementation_version_platform_machine(
        menv: dict[str, str], expected: str) -> None:
    assert env_id(menv) == expected


def test_a_sections_marker_selects_by_the_four_keys_only() -> None:
    marker = env_marker(LINUX_311)
    assert marker == ("sys_platform == 'linux' and platform_machine == 'x86_64' and "
                      "implementation_name == 'cpython' and python_version == '3.11'")
    assert Marker(marker).evaluate({**LINUX_311, "platform_release": "6.9.0"})  # a new kernel
    for key in SELECTING_KEYS:
        assert not Marker(marker).evaluate({**LINUX_311, key: "other"}), key


def test_the_current_marker_environment_is_packagings_as_strings() -> None:
    menv = current_marker_environment()
    assert menv == {k: str(v) for k, v in default_environment().items()}
    assert menv["python_version"] == HERE
    assert Marker(env_marker(menv)).evaluate(menv)


def wheel_package(name: str, tag: str) -> Package:
    filename = f"{name}-1.0-{tag}.whl"
    return Package(name, "1.0", Wheel(filename, "a" * 64, 1, url=f"https://x.example/{filename}"))


def lock(*sections: Environment) -> Lock:
    return Lock("requirements.txt", "0" * 64, sections)


def section(env: str, marker: str, *packages: Package) -> Environment:
    return Environment(env, marker, {}, packages)


def test_the_building_interpreter_gets_the_first_section_whose_wheels_install_here() -> None:
    """Markers cannot tell ABIs apart: a section for this platform whose wheel is for an
    ABI this interpreter lacks is passed over."""
    here = env_marker(current_marker_environment())
    other_abi = section("other-abi", here, wheel_package("alpha", "cp27-cp27mu-manylinux1_x86_64"))
    fits = section("fits", here, wheel_package("alpha", "py3-none-any"))
    elsewhere = section("elsewhere", "sys_platform == 'plan9'")
    assert section_for(lock(elsewhere, other_abi, fits), Target(HERE, building=True)) == fits
    assert section_for(lock(elsewhere, other_abi), Target(HERE, building=True)) is None


def test_another_interpreters_section_is_matched_by_its_version_not_its_tags() -> None:
    """Its wheels' tags are checked where it is loaded, not here."""
    others = current_marker_environment()
    others["python_version"] = "3.99"
    theirs = section("theirs", env_marker(others),
                     wheel_package("alpha", "cp399-cp399-manylinux_2_17_x86_64"))
    ours = section("ours", env_marker(current_marker_environment()))
    locked = lock(ours, theirs)
    assert section_for(locked, Target("3.99", executable="/usr/bin/python3.99")) == theirs
    assert section_for(locked, Target(HERE, building=True)) == ours


def test_another_interpreters_full_version_is_its_first_release() -> None:
    full = section("full", "python_full_version == '3.99.0'")
    assert section_for(lock(full), Target("3.99")) == full
    assert section_for(lock(full), Target("3.98")) is None


def test_each_platform_gets_the_building_python_and_every_listed_one(tmp_path: Path) -> None:
    from dataclasses import replace

    from carton_backend.resolution.platforms import parse_platform

    cfg = replace(config(tmp_path, "3.99"), platforms=("windows", "aarch64-apple-darwin"))
    found = targets(cfg)
    assert [(t.python_version, t.platform.name if t.platform else None) for t in found] == [
        (HERE, None), ("3.99", None), (HERE, "windows"), ("3.99", "windows"),
        (HERE, "aarch64-apple-darwin"), ("3.99", "aarch64-apple-darwin")]
    assert found[2] == Target(HERE, platform=parse_platform("windows"))
    assert found[3].label == "Python 3.99 on windows"
    check_interpreter(found[3], cfg)  # no interpreter is needed for another platform


def test_a_platforms_section_is_found_by_its_name_and_version_alone(tmp_path: Path) -> None:
    """The building interpreter never takes a section locked for a platform by name
    (it gets its own), and a platform never takes another's, even where markers agree."""
    from carton_backend.resolution.platforms import parse_platform

    def section(id_: str, menv: dict[str, str], platform: str | None) -> Environment:
        return Environment(id_, env_marker(menv), menv, (), platform=platform)

    here = current_marker_environment()
    linux = parse_platform(f"{here['platform_machine']}-manylinux_2_17")
    same = section("foreign-here", linux.marker_environment(HERE), linux.name)
    lock = Lock("requirements.txt", "0" * 64, (same,))
    assert section_for(lock, Target(HERE, building=True)) is None
    assert section_for(lock, Target(HERE, platform=linux)) is same
    assert section_for(lock, Target("3.99", platform=linux)) is None
    assert section_for(lock, Target(HERE, platform=parse_platform("windows"))) is None
    own = section("own", here, None)
    lock = Lock("requirements.txt", "0" * 64, (same, own))
    assert section_for(lock, Target(HERE, building=True)) is own


def test_the_command_line_adds_platforms_with_its_pythons_or_the_configured_ones(
        tmp_path: Path) -> None:
    from dataclasses import replace

    cfg = replace(config(tmp_path, "3.99"), platforms=("windows",))

    def pairs(found: list[Target]) -> list[tuple[str, str | None]]:
        return [(t.python_version, t.platform.name if t.platform else None) for t in found]

    assert pairs(targets(cfg, ("macos",), ("3.12",))) == [
        (HERE, None), ("3.99", None), (HERE, "windows"), ("3.99", "windows"),
        ("3.12", "macos")]  # no python3.12 needed here
    assert pairs(targets(cfg, ("macos", "windows"))) == [
        (HERE, None), ("3.99", None), (HERE, "windows"), ("3.99", "windows"),
        (HERE, "macos"), ("3.99", "macos")]
    assert pairs(targets(cfg, (), ("3.98",))) == [  # no platform: this machine's python3.98
        (HERE, None), ("3.99", None), ("3.98", None), (HERE, "windows"), ("3.99", "windows")]


@pytest.mark.parametrize("machine", ["x86_64", "it's", 'say "x"', "back\\slash"])
def test_a_section_marker_names_any_value_as_packaging_reads_it(machine: str) -> None:
    # PEP 508 strings have no escapes: a value is quoted with the quote it does not hold.
    menv = {**LINUX_311, "platform_machine": machine}
    marker = Marker(env_marker(menv))
    assert marker.evaluate({**default_environment(), **menv})
    assert not marker.evaluate({**default_environment(), **menv, "platform_machine": "other"})


def test_a_value_with_both_quotes_cannot_be_a_marker() -> None:
    with pytest.raises(BuildError, match="both quote characters"):
        env_marker({**LINUX_311, "platform_machine": "it's \"x\""})
