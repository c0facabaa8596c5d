"""carton_hook/formats/lockfile.py: the lock schema's canonical bytes and its validation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carton_hook.errors import CartonError, LockError
from carton_hook.formats.lockfile import (
    LOCK_VERSION,
    Environment,
    Lock,
    Package,
    Wheel,
    bundled_path,
    dump_lock,
    load_lock,
    parse_lock,
)
from carton_hook.formats.urls import url_problem

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()
SHA_REQ = hashlib.sha256(b"requirements").hexdigest()
WHEEL_A = "six-1.16.0-py2.py3-none-any.whl"
WHEEL_B = "demo_pkg-2.0-py3-none-any.whl"
PKG0 = "environments[0].packages[0]"
WHL0 = f"{PKG0}.wheels[0]"


def sample_lock() -> Lock:
    """Two environments, a URL wheel and a bundled one, every optional field set."""
    six = Package(
        name="six",
        version="1.16.0",
        wheel=Wheel(name=WHEEL_A, sha256=SHA_A, size=11053,
                    url="https://files.example.org/packages/" + WHEEL_A),
        requested=True,
        imports=("six",),
        index_url="https://pypi.org/simple/",
    )
    demo = Package(
        name="demo-pkg",
        version="2.0",
        wheel=Wheel(name=WHEEL_B, sha256=SHA_B, size=2048, path=bundled_path(SHA_B, WHEEL_B)),
        dependencies=("six",),
        imports=("demo_pkg", "google.protobuf"),
        built_from={"sdist": "demo-pkg-2.0.tar.gz", "note": "naïve ☃"},
        libraries={"libdemo.so.1": ("demo_pkg.libs/libdemo.so.1", ("libz.so.1",))},
        needs_libraries=("libc.so.6", "libz.so.1"),
        imported_dependencies=(),
    )
    linux = Environment(
        id="cp311-manylinux_2_17_x86_64",
        marker="python_version == '3.11' and sys_platform == 'linux'",
        marker_environment={"python_version": "3.11", "sys_platform": "linux"},
        packages=(six, demo),
    )
    mac = Environment(
        id="cp312-macosx_11_0_arm64",
        marker="python_version == '3.12' and sys_platform == 'darwin'",
        marker_environment={"python_version": "3.12", "sys_platform": "darwin"},
        packages=(six,),
    )
    return Lock(
        requirements_path="requirements.txt",
        requirements_sha256=SHA_REQ,
        environments=(linux, mac),
        created_by="carton 0.1.0",
        extra={"x-comment": "kept as is"},
    )


def sample_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dump_lock(sample_lock()))
    return data


def parse(data: Any) -> Lock:
    return parse_lock(json.dumps(data).encode(), "model/.carton/carton.lock")


def refused(data: Any) -> LockError:
    with pytest.raises(LockError) as info:
        parse(data)
    return info.value


def assert_names_key(err: LockError, key: str, fragment: str) -> None:
    assert err.key == key
    assert err.path == "model/.carton/carton.lock"
    assert f"model/.carton/carton.lock: {key}: " in str(err)
    assert fragment in str(err)
    assert "\n" not in str(err)


# Round trip and canonical form


def test_dump_then_parse_then_dump_is_byte_identical() -> None:
    raw = dump_lock(sample_lock())
    again = dump_lock(parse_lock(raw, "carton.lock"))
    assert again == raw


def test_parse_gives_back_the_same_lock() -> None:
    lock = sample_lock()
    back = parse_lock(dump_lock(lock), "carton.lock")
    assert back.requirements_path == lock.requirements_path
    assert back.requirements_sha256 == lock.requirements_sha256
    assert back.created_by == "carton 0.1.0"
    assert back.lock_version == LOCK_VERSION
    assert dict(back.extra) == {"x-comment": "kept as is"}
    env = back.environment("cp311-manylinux_2_17_x86_64")
    assert env is not None
    by_name = {p.name: p for p in env.packages}
    assert set(by_name) == {"six", "demo-pkg"}
    demo = by_name["demo-pkg"]
    assert demo.wheel.bundled
    assert demo.wheel.path == f".carton/bundled_wheels/{SHA_B}/{WHEEL_B}"
    assert demo.wheel.url is None
    assert demo.dependencies == ("six",)
    assert demo.imports == ("demo_pkg", "google.protobuf")
    assert demo.built_from == {"sdist": "demo-pkg-2.0.tar.gz", "note": "naïve ☃"}
    assert demo.requested is False
    assert demo.imported_dependencies == ()  # read, and none imported: not None
    six = by_name["six"]
    assert six.imported_dependencies is None
    assert not six.wheel.bundled
    assert six.wheel.url == "https://files.example.org/packages/" + WHEEL_A
    assert six.wheel.size == 11053
    assert six.requested is True
    assert six.index_url == "https://pypi.org/simple/"
    assert back.environment("cp39-win32") is None


def test_dump_sorts_keys_and_ends_with_one_newline() -> None:
    raw = dump_lock(sample_lock())
    assert raw.endswith(b"}\n")
    assert not raw.endswith(b"\n\n")
    text = raw.decode("utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert list(data) == sorted(data)
    package = data["environments"][0]["packages"][0]
    assert list(package) == sorted(package)
    # Non-ASCII is written as UTF-8, not escaped.
    assert "naïve ☃".encode() in raw


def test_dump_sorts_packages_by_name() -> None:
    raw = dump_lock(sample_lock())
    names = [p["name"] for p in json.loads(raw)["environments"][0]["packages"]]
    assert names == ["demo-pkg", "six"]


def test_dump_does_not_depend_on_package_order() -> None:
    lock = sample_lock()
    env = lock.environments[0]
    flipped = Environment(env.id, env.marker, env.marker_environment, env.packages[::-1])
    other = Lock(lock.requirements_path, lock.requirements_sha256,
                 (flipped, lock.environments[1]), lock.created_by, extra=lock.extra)
    assert dump_lock(other) == dump_lock(lock)


# The version


def test_lock_version_string_one_point_zero_is_accepted() -> None:
    data = sample_json()
    data["lock-version"] = "1.0"
    assert parse(data).lock_version == 1


@pytest.mark.parametrize("version", [2, "2", "2.0", 0])
def test_unknown_lock_version_major_is_refused(version: Any) -> None:
    data = sample_json()
    data["lock-version"] = version
    err = refused(data)
    assert_names_key(err, "lock-version", "is not supported by this carton")
    assert "upgrade carton" in str(err)


@pytest.mark.parametrize("version", [None, True, "one", "1.0.0", [1]])
def test_lock_version_that_is_not_a_number_is_refused(version: Any) -> None:
    data = sample_json()
    if version is None:
        del data["lock-version"]
    else:
        data["lock-version"] = version
    assert_names_key(refused(data), "lock-version", "expected a version number")


# Hashes


@pytest.mark.parametrize("sha", [
    "0" * 63,
    "0" * 65,
    "g" * 64,
    "../" + SHA_A[3:],
    SHA_A + "\n",
    f"sha256:{SHA_A}",
    64,
])
def test_bad_wheel_sha256_is_refused(sha: Any) -> None:  # THREATS H2
    data = sample_json()
    data["environments"][0]["packages"][0]["wheels"][0]["hashes"]["sha256"] = sha
    assert_names_key(refused(data), f"{WHL0}.hashes.sha256", "64 hexadecimal digits")


def test_url_wheel_sha256_with_a_trailing_newline_is_refused() -> None:
    data = url_lock(f"https://files.example.org/{WHEEL_B}")
    data["environments"][0]["packages"][0]["wheels"][0]["hashes"]["sha256"] = SHA_B + "\n"
    assert_names_key(refused(data), f"{WHL0}.hashes.sha256", "64 hexadecimal digits")


def test_missing_wheel_hashes_is_refused() -> None:
    data = sample_json()
    del data["environments"][0]["packages"][0]["wheels"][0]["hashes"]
    assert_names_key(refused(data), f"{WHL0}.hashes", "expected a table")


@pytest.mark.parametrize("sha", ["abc", SHA_REQ + "\n", " " + SHA_REQ, None])
def test_bad_requirements_sha256_is_refused(sha: Any) -> None:
    data = sample_json()
    data["requirements"]["sha256"] = sha
    assert_names_key(refused(data), "requirements.sha256", "64 hexadecimal digits")


# Wheels


def test_missing_wheels_is_refused() -> None:
    data = sample_json()
    del data["environments"][0]["packages"][0]["wheels"]
    assert_names_key(refused(data), f"{PKG0}.wheels", "expected an array")


@pytest.mark.parametrize("imported", [["other"], "six", [1]])
def test_imported_dependencies_outside_the_dependencies_are_refused(imported: Any) -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["tool"]["carton"]["imported-dependencies"] = imported
    err = refused(data)
    assert err.key == f"{PKG0}.tool.carton.imported-dependencies", err


def test_no_wheel_is_refused() -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["wheels"] = []
    assert_names_key(refused(data), f"{PKG0}.wheels", "exactly one wheel")


def test_two_wheels_are_refused() -> None:
    data = sample_json()
    wheels = data["environments"][0]["packages"][0]["wheels"]
    wheels.append(dict(wheels[0]))
    assert_names_key(refused(data), f"{PKG0}.wheels", "exactly one wheel")


def test_wheel_with_both_url_and_path_is_refused() -> None:
    data = sample_json()
    wheel = data["environments"][0]["packages"][0]["wheels"][0]
    assert "path" in wheel  # demo-pkg sorts first and is bundled
    wheel["url"] = "https://files.example.org/" + WHEEL_B
    assert_names_key(refused(data), WHL0, "exactly one of `url` and `path`")


def test_wheel_with_neither_url_nor_path_is_refused() -> None:
    data = sample_json()
    del data["environments"][0]["packages"][0]["wheels"][0]["path"]
    assert_names_key(refused(data), WHL0, "exactly one of `url` and `path`")


def url_lock(url: Any) -> dict[str, Any]:
    data = sample_json()
    wheel = data["environments"][0]["packages"][0]["wheels"][0]
    del wheel["path"]
    wheel["url"] = url
    return data


@pytest.mark.parametrize("url", [
    f"file:///tmp/{WHEEL_B}",
    f"file://localhost/tmp/{WHEEL_B}",
    f"http://files.example.org/{WHEEL_B}",
    f"http://127.0.0.1.example.org/{WHEEL_B}",
    f"ftp://127.0.0.1/{WHEEL_B}",
    f"https:///{WHEEL_B}",
    WHEEL_B,
    f"//files.example.org/{WHEEL_B}",
])
def test_url_that_may_not_be_fetched_is_refused(url: str) -> None:
    err = refused(url_lock(url))
    assert_names_key(err, f"{WHL0}.url", "only https URLs")
    assert repr(url) in str(err)


def test_url_that_is_not_a_string_is_refused() -> None:
    assert_names_key(refused(url_lock(42)), f"{WHL0}.url", "expected a string")


@pytest.mark.parametrize("url", [
    f"https://[::1/{WHEEL_B}",
    f"http://[127.0.0.1/{WHEEL_B}",
])
def test_malformed_url_is_a_lock_error_naming_the_key(url: str) -> None:
    err = refused(url_lock(url))
    assert_names_key(err, f"{WHL0}.url", "is not a valid URL")
    assert repr(url) in str(err)


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1/{WHEEL_B}",
    f"http://127.0.0.1:8080/simple/demo-pkg/{WHEEL_B}",
    f"http://localhost:9/{WHEEL_B}",
    f"http://[::1]:9/{WHEEL_B}",
    f"https://files.example.org/{WHEEL_B}",
])
def test_https_and_loopback_http_urls_are_accepted(url: str) -> None:
    assert url_problem(url) is None
    wheel = parse(url_lock(url)).environments[0].packages[0].wheel
    assert wheel.url == url
    assert not wheel.bundled


@pytest.mark.parametrize("path", [
    f".carton/bundled_wheels/{SHA_A}/{WHEEL_B}",  # someone else's hash
    f".carton/bundled_wheels/{SHA_B}/six-1.16.0-py2.py3-none-any.whl",  # another file
    f"bundled_wheels/{SHA_B}/{WHEEL_B}",
    f"/.carton/bundled_wheels/{SHA_B}/{WHEEL_B}",
    f".carton/bundled_wheels/{SHA_B}/../{SHA_B}/{WHEEL_B}",
    f"./.carton/bundled_wheels/{SHA_B}/{WHEEL_B}",
    f".carton\\bundled_wheels\\{SHA_B}\\{WHEEL_B}",
    f"../../{WHEEL_B}",
    WHEEL_B,
])
def test_path_outside_the_bundled_layout_is_refused(path: str) -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["wheels"][0]["path"] = path
    err = refused(data)
    assert_names_key(err, f"{WHL0}.path", "expected")
    assert repr(f".carton/bundled_wheels/{SHA_B}/{WHEEL_B}") in str(err)


@pytest.mark.parametrize("name", [
    "demo_pkg-2.0.tar.gz",
    "../demo_pkg-2.0-py3-none-any.whl",
    "sub/demo_pkg-2.0-py3-none-any.whl",
    "sub\\demo_pkg-2.0-py3-none-any.whl",
    ".whl",
])
def test_wheel_name_that_is_not_a_wheel_filename_is_refused(name: str) -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["wheels"][0]["name"] = name
    assert_names_key(refused(data), f"{WHL0}.name", "is not a wheel filename")


@pytest.mark.parametrize("size", [0, -1, "10", 1.5, True, None])
def test_wheel_size_must_be_a_positive_integer(size: Any) -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["wheels"][0]["size"] = size
    assert_names_key(refused(data), f"{WHL0}.size", "expected a positive integer")


# Packages and environments


def test_duplicate_package_names_are_refused() -> None:
    data = sample_json()
    packages = data["environments"][0]["packages"]
    packages.append(json.loads(json.dumps(packages[1])))
    assert_names_key(refused(data), "environments[0].packages", "listed twice")


def test_package_names_that_differ_only_in_spelling_are_duplicates() -> None:
    data = sample_json()
    packages = data["environments"][0]["packages"]
    twin = json.loads(json.dumps(packages[0]))
    twin["name"] = "Demo_Pkg"
    packages.append(twin)
    assert_names_key(refused(data), "environments[0].packages", "listed twice")


def test_the_same_package_in_two_environments_is_fine() -> None:
    lock = parse(sample_json())
    assert [len(e.packages) for e in lock.environments] == [2, 1]


def test_duplicate_environment_ids_are_refused() -> None:
    data = sample_json()
    data["environments"][1]["id"] = data["environments"][0]["id"]
    err = refused(data)
    assert_names_key(err, "environments[1].id", "duplicate environment")
    assert "'cp311-manylinux_2_17_x86_64'" in str(err)


@pytest.mark.parametrize(("mutate", "key", "fragment"), [
    (lambda d: d["environments"][0].pop("id"), "environments[0].id", "non-empty string"),
    (lambda d: d["environments"][1].update(marker=""), "environments[1].marker",
     "non-empty string"),
    (lambda d: d["environments"][0]["marker-environment"].update(python_version=3.11),
     "environments[0].marker-environment", "expected string values"),
    (lambda d: d["environments"][0].pop("packages"), "environments[0].packages",
     "expected an array"),
    (lambda d: d.update(environments={}), "environments", "expected an array"),
    (lambda d: d.update(requirements=[]), "requirements", "expected a table"),
    (lambda d: d["requirements"].pop("path"), "requirements.path", "non-empty string"),
    (lambda d: d["environments"][0]["packages"].__setitem__(0, "six"), PKG0,
     "expected a table"),
    (lambda d: d["environments"][0]["packages"][0].pop("version"), f"{PKG0}.version",
     "non-empty string"),
    (lambda d: d["environments"][0]["packages"][0].update(name=7), f"{PKG0}.name",
     "non-empty string"),
    (lambda d: d["environments"][0]["packages"][0].update(dependencies=["six", ""]), PKG0,
     "non-empty strings"),
    (lambda d: d["environments"][0]["packages"][0].update(dependencies="six"),
     f"{PKG0}.dependencies", "expected an array"),
    (lambda d: d["environments"][0]["packages"][0]["tool"]["carton"].update(imports=[1]),
     PKG0, "non-empty strings"),
    (lambda d: d["environments"][0]["packages"][0].update(tool=[]), f"{PKG0}.tool",
     "expected a table"),
    (lambda d: d["environments"][0]["packages"][0]["tool"].update(carton="x"),
     f"{PKG0}.tool.carton", "expected a table"),
    (lambda d: d["environments"][0]["packages"][0]["tool"]["carton"].update(
        {"built-from": "sdist"}), f"{PKG0}.tool.carton.built-from", "expected a table"),
    (lambda d: d["environments"][0]["packages"][0]["tool"]["carton"]["shared-libraries"][
        "provides"]["libdemo.so.1"].update(path="../../escape.so"),
     f"{PKG0}.tool.carton.shared-libraries.provides.libdemo.so.1.path",
     "not a relative path inside the wheel"),
    (lambda d: d["environments"][0]["packages"][0]["tool"]["carton"]["shared-libraries"][
        "provides"]["libdemo.so.1"].update(path="/usr/lib/libz.so"),
     f"{PKG0}.tool.carton.shared-libraries.provides.libdemo.so.1.path",
     "not a relative path inside the wheel"),
    (lambda d: d["environments"][0]["packages"][0]["tool"]["carton"]["shared-libraries"]
     .update(needs=["a/b.so"]), f"{PKG0}.tool.carton.shared-libraries.needs",
     "expected library names"),
    (lambda d: d["environments"][0]["packages"][0]["tool"]["carton"].update(
        {"shared-libraries": []}), f"{PKG0}.tool.carton.shared-libraries", "expected a table"),
    (lambda d: d["environments"][0]["packages"][1].update(index=1),
     "environments[0].packages[1].index", "expected a string"),
    (lambda d: d["environments"][0]["packages"][0]["wheels"].__setitem__(0, WHEEL_B),
     WHL0, "expected a table"),
])
def test_every_schema_error_names_its_key(mutate: Callable[[dict[str, Any]], object], key: str,
                                          fragment: str) -> None:
    data = sample_json()
    mutate(data)
    assert_names_key(refused(data), key, fragment)


def test_top_level_that_is_not_a_table_is_refused() -> None:
    assert_names_key(refused([1]), "(top)", "expected a table")


def test_optional_package_fields_may_be_left_out() -> None:
    data = sample_json()
    package = data["environments"][0]["packages"][0]
    for key in ("tool", "dependencies", "requested", "index"):
        package.pop(key, None)
    parsed = parse(data).environments[0].packages[0]
    assert parsed.imports == ()
    assert parsed.dependencies == ()
    assert parsed.requested is False
    assert parsed.built_from is None
    assert parsed.index_url is None


# Bytes and files


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b"\xff\xfe{}", b'{"a": 1} trailing'])
def test_invalid_json_is_refused(raw: bytes) -> None:
    with pytest.raises(LockError) as info:
        parse_lock(raw, "model/.carton/carton.lock")
    assert info.value.key is None
    assert str(info.value).startswith("model/.carton/carton.lock: not valid JSON")
    assert "lock again" in str(info.value)


def test_load_lock_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "carton.lock"
    raw = dump_lock(sample_lock())
    path.write_bytes(raw)
    assert dump_lock(load_lock(path)) == raw


def test_load_lock_on_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / ".carton" / "carton.lock"
    with pytest.raises(LockError) as info:
        load_lock(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: not found")
    assert "python -m carton_backend lock" in str(info.value)


def test_load_lock_on_a_folder(tmp_path: Path) -> None:
    with pytest.raises(LockError) as info:
        load_lock(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: cannot read")


def test_lock_error_is_a_carton_error_and_a_value_error() -> None:
    err = refused({"lock-version": 9})
    assert isinstance(err, CartonError)
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_requested_must_be_a_boolean(value: Any) -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["requested"] = value
    assert_names_key(refused(data), "environments[0].packages[0].requested",
                     "expected true or false")


def test_upper_case_sha256_is_normalised() -> None:  # THREATS H2
    data = sample_json()
    wheel = data["environments"][0]["packages"][1]["wheels"][0]
    wheel["hashes"]["sha256"] = wheel["hashes"]["sha256"].upper()
    lock = parse(data)
    assert lock.environments[0].packages[1].wheel.sha256 == wheel["hashes"]["sha256"].lower()


# A damaged lock is refused, never taken as "no section applies" (which would resolve the
# model's packages afresh at load time).


def test_a_lock_with_no_environment_is_refused() -> None:
    data = sample_json()
    data["environments"] = []
    assert_names_key(refused(data), "environments", "no environment is locked")


@pytest.mark.parametrize("marker", ["python_version ==", "garbage", "os_name = 'posix'",
                                    "python_version == '3.11' and"])
def test_a_marker_that_does_not_parse_is_refused(marker: str) -> None:
    data = sample_json()
    data["environments"][0]["marker"] = marker
    assert_names_key(refused(data), "environments[0].marker", "is not a PEP 508 marker")


@pytest.mark.parametrize("name", [
    "six.whl", "six-1.16.0.whl", "six-1.16.0-py3-none-any.whl\x00.whl",
    "six-1.16.0-py3-none\nany.whl", "six-1.16.0-py3 -none-any.whl", "-six-1.16.0-py3-none-any.whl",
    "six-1.16.0-py3-none-any" + "_x" * 150 + ".whl", "six-not.a.version-py3-none-any.whl",
])
def test_a_wheel_name_that_is_not_a_wheel_filename_is_refused(name: str) -> None:
    data = sample_json()
    data["environments"][0]["packages"][0]["wheels"][0]["name"] = name
    err = refused(data)
    assert err.key == f"{WHL0}.name" and "\n" not in str(err) and "\x00" not in str(err)


def test_a_wheel_of_another_project_or_version_is_refused() -> None:
    for name in ("other-2.0-py3-none-any.whl", "demo_pkg-2.1-py3-none-any.whl"):
        data = sample_json()
        data["environments"][0]["packages"][0]["wheels"][0]["name"] = name
        assert_names_key(refused(data), f"{WHL0}.name", "is not a wheel of demo-pkg 2.0")


def test_a_section_locked_for_a_platform_keeps_its_name() -> None:
    data = sample_json()
    assert all("platform" not in env for env in data["environments"])  # absent: unchanged
    data["environments"][1]["platform"] = "aarch64-apple-darwin"
    lock = parse(data)
    assert [e.platform for e in lock.environments] == [None, "aarch64-apple-darwin"]
    assert json.loads(dump_lock(lock)) == data


@pytest.mark.parametrize("value", ["", 3, ["windows"]])
def test_a_platform_that_is_not_a_name_is_refused(value: Any) -> None:
    data = sample_json()
    data["environments"][0]["platform"] = value
    assert "environments[0].platform" in str(refused(data))


# ---------------------------------------------------------------- without packaging


def test_a_lock_in_carton_s_forms_reads_the_same_without_packaging() -> None:
    """Its markers and wheel filenames are checked by commonforms.py; the result is the
    lock that packaging's checks read."""
    raw = dump_lock(sample_lock())
    assert parse_lock(raw, "x", quick=True) == parse_lock(raw, "x")


def _marker_with_or(data: dict[str, Any]) -> None:
    data["environments"][0]["marker"] = "sys_platform == 'linux' or sys_platform == 'darwin'"


def _build_tag(data: dict[str, Any]) -> None:
    six = data["environments"][0]["packages"][1]["wheels"][0]
    assert six["name"] == WHEEL_A
    six["name"] = "six-1.16.0-1-py2.py3-none-any.whl"


def _version_spelled_otherwise(data: dict[str, Any]) -> None:
    data["environments"][0]["packages"][0]["version"] = "2.0.0"  # PEP 440's 2.0


@pytest.mark.parametrize("change", [_marker_with_or, _build_tag, _version_spelled_otherwise])
def test_what_only_packaging_decides_is_undecided_without_it(
        change: Callable[[dict[str, Any]], None]) -> None:
    """Valid, as packaging reads it; left to packaging by a reader that must not import
    it (the model's process, loading/selection.py)."""
    from carton_hook.formats.commonforms import Undecided

    data = sample_json()
    change(data)
    raw = json.dumps(data).encode()
    parse_lock(raw, "x")
    with pytest.raises(Undecided):
        parse_lock(raw, "x", quick=True)


def test_reading_a_lock_in_carton_s_forms_imports_no_packaging() -> None:
    import subprocess
    import sys

    code = ("import sys\nfrom carton_hook.formats.lockfile import parse_lock\n"
            f"parse_lock({dump_lock(sample_lock())!r}, 'x')\n"
            "parse_lock(sys.argv[1].encode(), 'x', quick=True)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('packaging', 'dataclasses'))))\n")
    out = subprocess.run([sys.executable, "-c", code, dump_lock(sample_lock()).decode()],
                         capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout
    assert out == "[]\n"
