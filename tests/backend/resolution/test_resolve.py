"""parse_report, dependency_graph, pip_error, and a real resolve() against a loopback index."""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from carton_backend.config import ModelConfig
from carton_backend.errors import BuildError, ResolveError
from carton_backend.resolution.environment import Target, targets
from carton_backend.resolution.resolve import (
    Resolution,
    Resolved,
    dependency_graph,
    parse_report,
    pip_error,
    resolve,
)

from ...factory import make_wheel
from ...indexserver import PackageIndex

SHA_A = "a" * 64
SHA_B = "B" * 64

ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.7",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "6.1.0",
    "platform_system": "Linux",
    "platform_version": "#1 SMP",
    "python_full_version": "3.11.7",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def item(name: str, version: str = "1.0", *, info: dict[str, Any] | None = None,
         requires: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"metadata_version": "2.1", "name": name, "version": version}
    if requires is not None:
        meta["requires_dist"] = requires
    if info is None:
        info = {"url": f"https://files.example/{name}-{version}-py3-none-any.whl",
                "archive_info": {"hashes": {"sha256": SHA_A}}}
    return {"metadata": meta, "download_info": info, **extra}


def report(*items: dict[str, Any], version: str = "1",
           env: dict[str, str] | None = None) -> dict[str, Any]:
    return {"version": version, "pip_version": "24.0", "install": list(items),
            "environment": ENV if env is None else env}


def test_wheel_with_hashes() -> None:
    res = parse_report(report(item("Foo_Bar", "2.0", requested=True, requested_extras=["x"],
                                   requires=["dep>=1"])))
    assert res.marker_environment == ENV
    [p] = res.packages
    assert p == Resolved(
        name="Foo_Bar", version="2.0",
        url="https://files.example/Foo_Bar-2.0-py3-none-any.whl", kind="wheel",
        sha256=SHA_A, requested=True, requires_dist=("dep>=1",), requested_extras=("x",),
    )
    assert p.key == "foo-bar"
    assert p.filename == "Foo_Bar-2.0-py3-none-any.whl"
    assert p.yanked is False
    assert p.vcs is None


def test_sdist_with_legacy_hash_uppercase() -> None:
    info = {"url": "https://files.example/packages/foo-1.0.tar.gz?x=1#frag",
            "archive_info": {"hash": f"sha256={SHA_B}"}}
    [p] = parse_report(report(item("foo", info=info))).packages
    assert p.kind == "sdist"
    assert p.sha256 == "b" * 64
    assert p.filename == "foo-1.0.tar.gz"
    assert p.requested is False
    assert p.requires_dist == ()
    assert p.requested_extras == ()


def test_hashes_win_over_legacy_hash() -> None:
    info = {"url": "https://files.example/foo-1.0-py3-none-any.whl",
            "archive_info": {"hash": f"sha256={SHA_B}", "hashes": {"sha256": SHA_A}}}
    [p] = parse_report(report(item("foo", info=info))).packages
    assert p.sha256 == SHA_A


def test_archive_without_sha256() -> None:
    info = {"url": "https://files.example/foo-1.0.zip", "archive_info": {"hash": "md5=abc"}}
    [p] = parse_report(report(item("foo", info=info))).packages
    assert p.kind == "sdist"
    assert p.sha256 is None


def test_wheel_url_with_fragment_is_a_wheel() -> None:
    info = {"url": f"https://files.example/foo-1.0-py3-none-any.whl#sha256={SHA_A}",
            "archive_info": {}}
    [p] = parse_report(report(item("foo", info=info))).packages
    assert p.kind == "wheel"
    assert p.filename == "foo-1.0-py3-none-any.whl"


def test_dir_info() -> None:
    info = {"url": "file:///models/m/local/pkg", "dir_info": {"editable": False}}
    [p] = parse_report(report(item("pkg", info=info, requested=True))).packages
    assert p.kind == "directory"
    assert p.sha256 is None
    assert p.url == "file:///models/m/local/pkg"
    assert p.filename == "pkg"


def test_vcs_info() -> None:
    info = {"url": "https://github.com/org/repo.git", "subdirectory": "python",
            "vcs_info": {"vcs": "git", "commit_id": "0123abcd" * 5,
                         "requested_revision": "v1.2"}}
    [p] = parse_report(report(item("repo", info=info))).packages
    assert p.kind == "vcs"
    assert p.sha256 is None
    assert p.vcs == {"vcs": "git", "commit_id": "0123abcd" * 5, "requested_revision": "v1.2"}
    assert p.subdirectory == "python"


def test_is_yanked() -> None:
    res = parse_report(report(item("a", is_yanked=True), item("b", is_yanked=False), item("c")))
    assert [p.yanked for p in res.packages] == [True, False, False]


def test_report_version_with_minor_and_no_install() -> None:
    res = parse_report(report(version="1.1"))
    assert res.packages == ()


@pytest.mark.parametrize("version", ["0", "2", "", None])
def test_wrong_version(version: str | None) -> None:
    data = report(item("a"))
    data["version"] = version
    with pytest.raises(ResolveError) as info:
        parse_report(data)
    assert isinstance(info.value, BuildError)
    assert str(info.value) == f"pip's report has version {version!r}; carton reads version 1"


def test_missing_version_and_not_a_dict() -> None:
    with pytest.raises(ResolveError, match="has version None"):
        parse_report({"install": []})
    with pytest.raises(ResolveError, match="has version None"):
        parse_report([1, 2])


def test_missing_environment() -> None:
    data = report(item("a"))
    del data["environment"]
    with pytest.raises(ResolveError, match="pip's report has no marker environment"):
        parse_report(data)


@pytest.mark.parametrize("broken", [
    {"download_info": {"url": "https://x/a-1.0-py3-none-any.whl", "archive_info": {}}},
    {"metadata": {"name": "a"},
     "download_info": {"url": "https://x/a-1.0-py3-none-any.whl", "archive_info": {}}},
    {"metadata": {"name": "a", "version": "1.0"}},
    {"metadata": {"version": "1.0"}, "download_info": {"url": "https://x/a.whl"}},
])
def test_missing_fields(broken: dict[str, Any]) -> None:
    with pytest.raises(ResolveError) as info:
        parse_report(report(item("ok"), broken))
    assert str(info.value).startswith("pip's report lacks the name, version or URL of {")


def graph_of(*items: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, list[str]]:
    return dependency_graph(parse_report(report(*items, env=env)))


def test_dependency_graph_markers_and_extras() -> None:
    graph = graph_of(
        item("A", requested=True, requires=["b[x]>=1", 'd ; python_version < "3"',
                                            "not-resolved>=1"]),
        item("b", requires=['C ; extra == "x"', 'e ; extra == "y"']),
        item("c"),
        item("d"),
        item("e"),
    )
    assert graph == {"a": ["b"], "b": ["c"], "c": [], "d": [], "e": []}


def test_dependency_graph_extras_found_later_in_the_report() -> None:
    # b is listed before the package that asks for its extra: the loop must go round again
    graph = graph_of(
        item("b", requires=['c ; extra == "x"']),
        item("c", requires=['d ; extra == "deep"']),
        item("d"),
        item("a", requires=["B[X]"]),
        item("z", requires=['c[deep] ; extra == "never"']),
    )
    assert graph == {"a": ["b"], "b": ["c"], "c": [], "d": [], "z": []}


def test_dependency_graph_requested_extras() -> None:
    graph = graph_of(item("a", requested=True, requested_extras=["gpu"],
                          requires=['b ; extra == "gpu"', 'c ; extra == "cpu"']),
                     item("b"), item("c"))
    assert graph == {"a": ["b"], "b": [], "c": []}


def test_dependency_graph_uses_report_environment() -> None:
    requires = ['w ; sys_platform == "win32"', 'l ; sys_platform == "linux"',
                'old ; python_version < "3.12"']
    items = (item("a", requires=requires), item("w"), item("l"), item("old"))
    assert graph_of(*items)["a"] == ["l", "old"]
    win = {**ENV, "sys_platform": "win32", "python_version": "3.12"}
    assert graph_of(*items, env=win)["a"] == ["w"]


def test_dependency_graph_skips_unparsable(caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI's logging setup may have cut the "carton" logger off from the root one
    monkeypatch.setattr(logging.getLogger("carton"), "propagate", True)
    graph = graph_of(item("a", requires=["b", "not a requirement !!"]), item("b"))
    assert graph == {"a": ["b"], "b": []}
    assert "a 1.0: ignoring unparsable dependency 'not a requirement !!'" in caplog.text


def test_pip_error_folds_error_lines() -> None:
    output = ("Looking in indexes: http://127.0.0.1/simple/\n"
              "ERROR: Could not find a version that satisfies the requirement nope==9\n"
              "  \n"
              "ERROR: No matching distribution found for nope==9\n")
    assert pip_error(output) == ("Could not find a version that satisfies the requirement "
                                 "nope==9 | No matching distribution found for nope==9")


def test_pip_error_keeps_indented_details() -> None:
    output = ("Collecting foo==1\n"
              "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE.\n"
              "    foo==1 from http://127.0.0.1/files/foo-1-py3-none-any.whl:\n"
              "        Expected sha256 00\n"
              "             Got        ff\n"
              "Done\n")
    assert pip_error(output) == (
        "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. "
        "foo==1 from http://127.0.0.1/files/foo-1-py3-none-any.whl: "
        "Expected sha256 00 Got        ff")


def test_pip_error_without_error_lines() -> None:
    assert pip_error("one\ntwo\n\nthree\nfour\n") == "two | three | four"
    assert pip_error("") == "no output"
    assert pip_error("  \n") == "no output"


def test_pip_error_no_pip() -> None:
    message = pip_error("/usr/bin/python3: No module named pip\n")
    assert message == f"pip is not installed in {sys.executable}"


def here() -> Target:
    """The building interpreter, as carton names it."""
    config = ModelConfig(root=Path("."), name="m", version="1", entrypoint="m")
    target = targets(config)[0]
    assert target.python_version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    return target


@pytest.mark.usefixtures("use_hermetic_env")
def test_resolve_against_loopback_index(tmp_path: Path, private: PackageIndex) -> None:
    wheels = tmp_path / "wheels"
    private.add(make_wheel(wheels, "alpha", "1.0", requires=["beta>=1"]))
    beta = private.add(make_wheel(wheels, "beta", "2.0", requires=[
        'gamma ; python_version >= "3"', 'delta ; python_version < "3"']))
    private.add(make_wheel(wheels, "gamma", "0.5"))
    private.add(make_wheel(wheels, "delta", "0.5"))
    private.add(make_wheel(wheels, "alpha", "0.9"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "requirements.txt").write_text("alpha\n")
    res = resolve(model, "requirements.txt", here(), constraints={}, only_binary=True)
    assert isinstance(res, Resolution)
    assert res.marker_environment["python_version"] == here().python_version
    assert res.marker_environment["sys_platform"] == sys.platform
    by_key = {p.key: p for p in res.packages}
    assert sorted(by_key) == ["alpha", "beta", "gamma"]
    alpha, b = by_key["alpha"], by_key["beta"]
    assert alpha.version == "1.0"
    assert alpha.requested is True
    assert alpha.kind == "wheel"
    assert alpha.requires_dist == ("beta>=1",)
    assert b.requested is False
    assert b.url == private.file_url("beta-2.0-py3-none-any.whl")
    assert b.filename == "beta-2.0-py3-none-any.whl"
    assert b.sha256 == hashlib.sha256(beta.read_bytes()).hexdigest()
    assert dependency_graph(res) == {"alpha": ["beta"], "beta": ["gamma"], "gamma": []}


@pytest.mark.usefixtures("use_hermetic_env")
def test_resolve_keeps_constraints(tmp_path: Path, private: PackageIndex) -> None:
    for version in ("1.0", "2.0"):
        private.add(make_wheel(tmp_path / "wheels", "alpha", version))
    (tmp_path / "requirements.txt").write_text("alpha\n")
    res = resolve(tmp_path, "requirements.txt", here(), constraints={"alpha": "1.0"},
                  only_binary=False)
    assert [(p.name, p.version) for p in res.packages] == [("alpha", "1.0")]


@pytest.mark.usefixtures("use_hermetic_env")
def test_resolve_failure_reports_pip_error(tmp_path: Path, private: PackageIndex) -> None:
    private.add(make_wheel(tmp_path / "wheels", "alpha", "1.0"))
    (tmp_path / "requirements.txt").write_text("alpha==7.0\n")
    with pytest.raises(ResolveError) as info:
        resolve(tmp_path, "requirements.txt", here(), constraints={}, only_binary=False)
    message = str(info.value)
    assert message.startswith(f"pip could not resolve {tmp_path / 'requirements.txt'} for "
                              f"Python {here().python_version}: ")
    assert "No matching distribution found for alpha==7.0" in message
    assert "\n" not in message


def foreign(platform: str, python: str = "3.12") -> Target:
    from carton_backend.resolution.platforms import parse_platform

    return Target(python, platform=parse_platform(platform))


def uv_compile(tmp_path: Path, requirements: Path, platform: str, python: str,
               indexes: list[PackageIndex]) -> dict[str, str]:
    """What uv resolves for the same target from the same indexes (the oracle)."""
    import shutil
    import subprocess

    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        pytest.skip("uv is not installed here")
    out = tmp_path / "uv-out.txt"
    cmd = [uv, "pip", "compile", "-q", "--no-config", "--no-python-downloads", "--no-header",
           "--no-annotate",
           "--python-platform", platform, "--python-version", python, "--only-binary", ":all:",
           "--cache-dir", str(tmp_path / "uv-cache"), "--index-strategy", "unsafe-best-match",
           "--default-index", indexes[0].url, *(a for i in indexes[1:]
                                                for a in ("--index", i.url)),
           str(requirements), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split("==") for line in out.read_text().splitlines()
                if "==" in line and not line.startswith("#"))


PLATFORM_CASES = ["x86_64-pc-windows-msvc", "aarch64-apple-darwin", "x86_64-apple-darwin",
                  "aarch64-manylinux_2_28", "x86_64-manylinux_2_17",
                  "x86_64-unknown-linux-musl"]


@pytest.mark.usefixtures("use_hermetic_env")
@pytest.mark.parametrize("platform", PLATFORM_CASES)
def test_a_foreign_resolution_is_the_oracles(tmp_path: Path, private: PackageIndex,
                                             pypi: PackageIndex, platform: str) -> None:
    """Markers that differ by platform (click's colorama on Windows, a `sys_platform`
    line), and per-platform wheels: the same packages at the same versions as uv's
    resolution for that target, each wheel one the target installs."""
    from packaging.utils import parse_wheel_filename

    wheels = tmp_path / "wheels"
    private.add(make_wheel(wheels, "click", "8.1.8",
                           requires=["colorama ; platform_system == 'Windows'"]))
    private.add(make_wheel(wheels, "colorama", "0.4.6"))
    private.add(make_wheel(wheels, "winonly", "1.0"))
    # A compiled package: a wheel per platform, and a newer version for Linux only.
    for tag in ("cp312-cp312-win_amd64", "cp312-cp312-macosx_11_0_arm64",
                "cp312-cp312-macosx_10_9_x86_64", "cp312-cp312-manylinux_2_17_x86_64",
                "cp312-cp312-manylinux_2_17_aarch64", "cp312-cp312-musllinux_1_1_x86_64"):
        pypi.add(make_wheel(wheels, "native", "1.0", tag=tag))
    for tag in ("cp312-cp312-manylinux_2_28_aarch64", "cp312-cp312-manylinux_2_34_x86_64"):
        pypi.add(make_wheel(wheels, "native", "2.0", tag=tag))
    (tmp_path / "requirements.txt").write_text(
        "click\nnative\nwinonly ; sys_platform == 'win32'\n")
    target = foreign(platform)
    res = resolve(tmp_path, "requirements.txt", target, constraints={}, only_binary=False)
    mine = {p.key: p.version for p in res.packages}
    assert mine == uv_compile(tmp_path, tmp_path / "requirements.txt", platform, "3.12",
                              [private, pypi])
    assert ("colorama" in mine) is ("windows" in platform)
    assert mine["native"] == ("2.0" if platform == "aarch64-manylinux_2_28" else "1.0")
    assert target.platform is not None
    supported = set(target.platform.tags("3.12"))
    assert all(not supported.isdisjoint(parse_wheel_filename(p.filename)[3])
               for p in res.packages)
    assert dict(res.marker_environment) == target.platform.marker_environment("3.12")


@pytest.mark.usefixtures("use_hermetic_env")
def test_a_package_without_a_wheel_for_the_target_is_one_line(tmp_path: Path,
                                                              private: PackageIndex) -> None:
    private.add(make_wheel(tmp_path / "wheels", "native", "1.0",
                           tag="cp312-cp312-manylinux_2_17_x86_64"))
    (tmp_path / "requirements.txt").write_text("native\n")
    with pytest.raises(ResolveError) as info:
        resolve(tmp_path, "requirements.txt", foreign("aarch64-apple-darwin"), constraints={},
                only_binary=False)
    message = str(info.value)
    assert message.startswith("native has no wheel for Python 3.12 on aarch64-apple-darwin "
                              "(only wheels are locked for another platform): "), message
    assert "\n" not in message
