"""carton_hook/formats/commonforms.py: what it decides without packaging, it decides as
packaging does; everything else it leaves undecided (None), and never says "no"."""

from __future__ import annotations

import importlib
import itertools
import platform
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, sys_tags
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from carton_hook.formats import commonforms
from carton_hook.formats.commonforms import (
    Undecided,
    installs_here,
    is_version,
    marker_clauses,
    marker_environment,
    marker_holds,
    requires_python_allows,
    wheel_parts,
)

DECIDED_HERE = commonforms.interpreter()
needs_decided_platform = pytest.mark.skipif(
    not DECIDED_HERE, reason="tags are decided on 64-bit glibc Linux CPython (x86_64, aarch64)")

MINOR = sys.version_info[1]
MACHINE = platform.machine()
OTHER = "aarch64" if MACHINE == "x86_64" else "x86_64"


def tag_grid() -> list[tuple[str, str, str]]:
    """Interpreter, ABI and platform tags around this interpreter's: the supported, the
    near misses, and the forms decided nowhere here."""
    cps = [f"cp3{m}" for m in (0, 1, 2, MINOR - 1, MINOR, MINOR + 1, 10 * MINOR)]
    interpreters = [*cps, "py3", "py2", "py30", f"py3{MINOR - 1}", f"py3{MINOR}",
                    f"py3{MINOR + 1}", "py", "pp3", f"pp3{MINOR}", "ip3", "cp2", "cp3"]
    abis = [*cps, "abi3", "abi3t", "none", f"cp3{MINOR}d", f"cp3{MINOR}t",
            f"pypy3{MINOR}_pp73"]
    glibc = [f"manylinux_2_{k}_{arch}" for k in range(0, 45) for arch in (MACHINE, OTHER)]
    platforms = ["any", f"linux_{MACHINE}", f"linux_{OTHER}", "linux_i686", *glibc,
                 *(f"{legacy}_{arch}" for legacy in ("manylinux1", "manylinux2010",
                                                     "manylinux2014")
                   for arch in (MACHINE, OTHER, "i686")),
                 f"manylinux_2_05_{MACHINE}", f"manylinux_3_0_{MACHINE}",
                 f"manylinux_2_17_{MACHINE}_v2", f"musllinux_1_2_{MACHINE}",
                 "macosx_11_0_arm64", "win_amd64", f"manylinux1_{MACHINE}x"]
    return list(itertools.product(interpreters, abis, platforms))


@needs_decided_platform
def test_a_tag_is_decided_to_install_exactly_when_packaging_lists_it() -> None:
    supported = {(t.interpreter, t.abi, t.platform) for t in sys_tags()}
    grid = tag_grid()
    assert len(grid) > 10_000 and len(supported & set(grid)) > 300
    wrong = [t for t in grid if (installs_here([t]) is True) != (t in supported)]
    assert wrong == []
    assert {installs_here([t]) for t in grid} == {True, None}  # never "no"


@needs_decided_platform
def test_a_wheel_installs_if_any_of_its_tags_does() -> None:
    assert installs_here([("py2", "none", "any"), ("py3", "none", "any")]) is True
    assert installs_here([("py2", "none", "any")]) is None
    assert installs_here([]) is None


@needs_decided_platform
def test_a_manylinux_module_leaves_manylinux_tags_undecided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """packaging asks `_manylinux.manylinux_compatible`, where there is one (PEP 600)."""
    manylinux = ("cp3" + str(MINOR), "cp3" + str(MINOR), f"manylinux_2_17_{MACHINE}")
    assert installs_here([manylinux]) is True
    (tmp_path / "_manylinux.py").write_text("def manylinux_compatible(*a):\n    return False\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert installs_here([manylinux]) is None
    assert installs_here([("py3", "none", "any")]) is True  # a pure wheel is not affected


def test_nothing_is_decided_for_another_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    pure = [("py3", "none", "any")]
    for name, value in (("abiflags", "t"), ("platform", "darwin")):
        with monkeypatch.context() as patched:
            patched.setattr(sys, name, value)
            assert installs_here(pure) is None
    monkeypatch.setenv("_PYTHON_HOST_PLATFORM", "linux-armv7l")
    assert installs_here(pure) is None


# Marker values: this interpreter's, others, and values no marker of carton's holds.
VALUES = {
    "sys_platform": ["linux", "darwin", "win32", "Linux", "linux2", "v1", "1", ""],
    "platform_machine": [MACHINE, OTHER, "AMD64", "arm64", "x86-64", "v8", "8"],
    "implementation_name": ["cpython", "pypy", "CPython", "v3"],
    "python_version": [f"3.{MINOR}", f"3.{MINOR + 1}", "3.1", "3.01", f"3.{MINOR}.0",
                       "3", "3.*", "4.0", "3.1a1"],
}


def markers() -> list[str]:
    """Markers in carton's form, and near misses of it."""
    here = marker_environment() or {k: v[0] for k, v in VALUES.items()}
    out = []
    for name, values in VALUES.items():
        for value in values:
            clauses = {**here, name: value}
            out.append(" and ".join(f"{k} == '{v}'" for k, v in clauses.items()))
    out += [f"sys_platform == 'linux' or python_version == '3.{MINOR}'",
            "(sys_platform == 'linux')", 'sys_platform == "linux"', "sys_platform != 'linux'",
            "'linux' == sys_platform", "sys_platform == 'linux' and sys_platform == 'linux'",
            "os_name == 'posix'", "sys_platform=='linux'", "sys_platform  ==  'linux'",
            "python_full_version == '3.11.7'", "", "extra == 'x'",
            "sys_platform == 'linux' and  python_version == '3.11'"]
    return out


def test_markers_decided_here_are_valid_and_hold_as_packaging_evaluates_them() -> None:
    environments = [{k: str(v) for k, v in default_environment().items()}]
    for name, values in VALUES.items():
        environments += [{**environments[0], name: value} for value in values]
    decided = undecided = 0
    for marker in markers():
        if marker_clauses(marker) is None:
            with pytest.raises(Undecided):
                marker_holds(marker, environments[0])
            continue
        decided += 1
        parsed = Marker(marker)  # valid PEP 508
        for environment in environments:
            try:
                holds = marker_holds(marker, environment)
            except Undecided:  # an environment value of another form: "3.11.0"
                undecided += 1
                continue
            assert holds == parsed.evaluate(environment), (marker, environment)
    assert decided >= 15 and undecided


def test_carton_s_own_markers_are_decided() -> None:
    from carton_backend.resolution.environment import current_marker_environment, env_marker

    marker = env_marker(current_marker_environment())
    assert marker_clauses(marker) is not None
    if sys.platform == "linux":
        here = marker_environment()
        assert here == {k: current_marker_environment()[k] for k in here}
        assert marker_holds(marker, here)


def test_outside_linux_the_marker_environment_is_left_to_packaging(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert marker_environment() is None


VERSIONS = ["0", "1", "1.0", "2.31.0", "10.0.0", "1.0a1", "1.0b2", "1.0rc3", "1.0.post1",
            "1.0.dev0", "1.0a1.post2.dev3", "2024.10.1", "01.0", "1.00", "1.0-1", "v1.0",
            "1.0.0-rc1", "1!1.0", "1.0+local", "1.0alpha1", "1.0c1", "1.0.post", "1..0",
            "1.0_1", " 1.0", "1.0 ", "1.0RC1", "", "a", "1.0.dev", "1.0a"]


def test_a_version_decided_here_is_valid_and_its_own_normal_form() -> None:
    decided = [v for v in VERSIONS if is_version(v)]
    assert len(decided) == 12
    for version in decided:
        assert str(Version(version)) == version


WHEELS = [
    "six-1.16.0-py2.py3-none-any.whl",
    "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "charset_normalizer-3.5.3-cp311-cp311-manylinux1_x86_64.manylinux_2_28_x86_64."
    "manylinux_2_5_x86_64.whl",
    "zope.interface-7.0-cp311-cp311-manylinux_2_17_aarch64.whl",
    "Foo_Bar-1.0rc1-py3-none-any.whl",
    "demo-1.0-1-py3-none-any.whl",  # a build tag: left to packaging
    "demo-1.0-PY3-none-any.whl", "demo__x-1.0-py3-none-any.whl", "demo-1.0_1-py3-none-any.whl",
    "demo-v1.0-py3-none-any.whl", "demo-1.0-py3-none.whl", "demo-1.0-py3--any.whl",
    "demo-1.0-py3-none-any.zip", "démo-1.0-py3-none-any.whl", "-1.0-py3-none-any.whl",
]


def test_a_wheel_filename_decided_here_parses_as_packaging_parses_it() -> None:
    decided = 0
    for filename in WHEELS:
        parts = wheel_parts(filename)
        if parts is None:
            continue
        decided += 1
        name, version, _, tags = parse_wheel_filename(filename)
        assert canonicalize_name(parts[0]) == name
        assert Version(parts[1]) == version
        assert frozenset(Tag(*t) for t in parts[2]) == tags
    assert decided == 5


@pytest.mark.skipif(sys.version_info.releaselevel != "final", reason="a final release")
def test_requires_python_decided_here_is_what_packaging_says() -> None:
    minor, micro = sys.version_info[1:3]
    versions = ["3", f"3.{minor}", f"3.{minor}.{micro}", f"3.{minor}.0", f"3.{minor + 1}",
                f"3.{minor - 1}", "4", "2.7", f"3.{minor}.{micro + 1}", f"3.{minor}.{micro}.0"]
    specifiers = [f"{op}{v}" for op in ("==", "!=", "<=", ">=", "<", ">", "~=")
                  for v in versions]
    specifiers += [f"{op}{v}.*" for op in ("==", "!=") for v in versions[:3]]
    specifiers += [f">=3.{minor - 1}, <4", f" >= 3.{minor} ,< 3.{minor + 1} ", ">=3.8,!=3.9.*",
                   "~=3", f">=3.{minor}.0rc1", f"==3.{minor}.*.*", ">=3.*", "", ">=3.10,",
                   "===3.11.7", f">3.{minor}.{micro}.post1", "<4,>=3a", "=>3.8"]
    decided = 0
    here = platform.python_version()
    for spec in specifiers:
        allows = requires_python_allows(spec)
        if allows is None:
            continue
        decided += 1
        assert SpecifierSet(spec).contains(here, prereleases=True), spec
    assert decided >= 20
    # A single release-only clause is always decided where packaging allows this Python.
    for spec in specifiers:
        if "," in spec or not commonforms._SPECIFIER.fullmatch(spec):
            continue
        try:
            allowed = SpecifierSet(spec).contains(here, prereleases=True)
        except InvalidSpecifier:
            assert requires_python_allows(spec) is None, spec
            continue
        assert (requires_python_allows(spec) is True) == allowed, spec


def test_a_pre_release_python_is_left_to_packaging(monkeypatch: pytest.MonkeyPatch) -> None:
    class Info(tuple):  # type: ignore[type-arg]
        releaselevel = "beta"

    monkeypatch.setattr(sys, "version_info", Info((3, 14, 0, "beta", 1)))
    assert requires_python_allows(">=3.10") is None
