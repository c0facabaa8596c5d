"""carton_hook/formats/wheelcheck.py: wheels are refused whole unless every member is safe and
matches RECORD (THREATS H5, H6, A1-A3, A5-A7, A9, A10)."""

from __future__ import annotations

import base64
import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from carton_hook.errors import CartonError, WheelError
from carton_hook.formats import wheelcheck
from carton_hook.formats.wheelcheck import check_wheel, parse_filename

from ..factory import make_wheel, record_row
from ..wheelzip import DIST_INFO, INIT, members, metadata, wheel_file, write_zip

WHEEL = "demo-1.0-py3-none-any.whl"


def refused(path: Path, fragment: str, filename: str | None = None) -> WheelError:
    with pytest.raises(WheelError) as info:
        check_wheel(path, filename)
    err = info.value
    assert err.wheel == (filename or path.name)
    assert str(err).startswith(f"{err.wheel}: ")
    assert fragment in str(err), str(err)
    return err


def b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# A good wheel


def test_good_wheel_is_accepted_with_imports_and_metadata(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", "1.0", {
        "demo/__init__.py": "",
        "demo/core.py": "X = 1\n",
        "demo_helpers.py": "",
        f"{DIST_INFO}/entry_points.txt": "[console_scripts]\ndemo = demo:main\n",
        f"{DIST_INFO}/licenses/LICENSE": "MIT\n",
        "demo-1.0.data/scripts/demo-run": "#!python\n",
    })
    info = check_wheel(path)
    assert info.filename == WHEEL
    assert (info.name, info.version) == ("demo", "1.0")
    assert info.dist_info == DIST_INFO
    assert info.imports == ("demo", "demo_helpers")
    assert set(info.metadata) == {"METADATA", "WHEEL", "RECORD", "entry_points.txt"}
    with zipfile.ZipFile(path) as zf:
        for name, data in info.metadata.items():
            assert data == zf.read(f"{DIST_INFO}/{name}")
    assert b"Name: demo\n" in info.metadata["METADATA"]
    assert b"Wheel-Version: 1.0" in info.metadata["WHEEL"]
    assert b"demo/core.py,sha256=" in info.metadata["RECORD"]


def test_default_make_wheel_is_accepted(tmp_path: Path) -> None:
    info = check_wheel(make_wheel(tmp_path, "Demo.Pkg", "2.0.1"))
    assert info.name == "demo_pkg"
    assert info.dist_info == "demo_pkg-2.0.1.dist-info"
    assert info.imports == ("demo_pkg",)


def test_wheel_is_named_by_the_filename_argument(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo").rename(tmp_path / "download.part")
    assert check_wheel(path, WHEEL).filename == WHEEL
    with pytest.raises(WheelError, match="not a valid wheel filename"):
        check_wheel(path)


def test_dist_info_version_may_differ_in_spelling_only(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, members(dist_info="demo-1.0.0.dist-info",
                                               meta=metadata("Demo", "1.0.0")))
    assert check_wheel(path).dist_info == "demo-1.0.0.dist-info"


def test_folder_entries_and_odd_modes_of_regular_files_are_accepted(tmp_path: Path) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = []
    for name, mode in (("demo/", 0o040755), ("demo/sub/", 0)):
        folder = zipfile.ZipInfo(name)
        folder.external_attr = (mode << 16) | 0x10
        entries.append((folder, b""))
    for name, data in members({INIT: b"", "demo/tool.py": b"", "demo/plain.py": b""}):
        info = zipfile.ZipInfo(name)
        info.external_attr = {"demo/tool.py": 0o104755, "demo/plain.py": 0}.get(
            name, 0o100644) << 16
        entries.append((info, data))
    assert check_wheel(write_zip(tmp_path / WHEEL, entries)).imports == ("demo",)


def test_unlisted_signature_file_is_accepted(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", extra_members={f"{DIST_INFO}/RECORD.jws": b"{}"})
    assert check_wheel(path).name == "demo"


def test_listed_signature_file_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", f"{DIST_INFO}/RECORD.jws": "{}"})
    refused(path, f"signature file '{DIST_INFO}/RECORD.jws' is listed in RECORD")


def test_carton_complete_below_the_top_is_an_ordinary_file(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo/.carton-complete": ""})
    assert check_wheel(path).imports == ("demo",)


# Names that escape, collide or differ between systems (A1, A2, A5, A6, A9)


@pytest.mark.parametrize(("name", "fragment"), [
    ("../evil.py", "'..' path component"),
    ("demo/../../evil.py", "'..' path component"),
    ("/x", "absolute"),
    ("/etc/passwd", "absolute"),
    ("demo\\..\\x", "backslash"),
    ("demo\\..\\..\\x", "backslash"),
    ("C:/x", "colon"),
    ("demo/x:s", "colon"),
    ("demo/a\nb.py", "control character"),
    ("demo/\u202eyp.py", "invisible"),
    ("demo/a\u200bb.py", "invisible"),
    ("demo/./x.py", "'.' or '..' path component"),
    ("demo//x.py", "empty"),
    ("demo/x.", "ending in a dot"),
    ("demo/x ", "ending in a dot or space"),
])
def test_unsafe_member_name_is_refused(tmp_path: Path, name: str, fragment: str) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", name: "evil = 1\n"})
    err = refused(path, f"unsafe member name {name!r}")
    assert fragment in str(err)


def test_escaping_member_is_refused_even_when_not_in_record(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", extra_members={"../evil.py": b"x"})
    refused(path, "unsafe member name '../evil.py'")


@pytest.mark.parametrize("name", [
    "demo/con.py", "demo/CON", "demo/aux.txt", "demo/nul.tar.gz", "demo/Com1.py",
    "lpt9/__init__.py", "demo/prn", "demo/conin$", "demo/con .py", "demo/COM¹.py",
])
def test_windows_device_name_is_refused(tmp_path: Path, name: str) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", name: ""})
    refused(path, f"unsafe member name {name!r}: reserved")


@pytest.mark.parametrize("name", ["demo/console.py", "demo/icon.py", "demo/com10.py",
                                  "demo/auxiliary/__init__.py", "demo/nullable.py"])
def test_names_that_only_start_like_a_device_are_fine(tmp_path: Path, name: str) -> None:
    check_wheel(make_wheel(tmp_path, "demo", files={INIT: "", name: ""}))


def test_top_level_carton_complete_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", ".carton-complete": ""})
    refused(path, "member '.carton-complete' is reserved for carton's cache")


@pytest.mark.parametrize("scheme", ["purelib", "platlib"])
def test_carton_complete_through_data_scheme_is_refused(tmp_path: Path, scheme: str) -> None:
    member = f"demo-1.0.data/{scheme}/.carton-complete"
    path = make_wheel(tmp_path, "demo", files={INIT: "", member: ""})
    refused(path, f"member '{member}' is reserved for carton's cache")


def test_top_level_carton_complete_folder_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", ".carton-complete/x": ""})
    refused(path, "is reserved for carton's cache")


def test_case_collision_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo/Mod.py": "", "demo/mod.py": ""})
    refused(path, "members 'demo/Mod.py' and 'demo/mod.py' collide")


def test_unicode_normalisation_collision_is_refused(tmp_path: Path) -> None:
    nfc, nfd = "demo/caf\u00e9.py", "demo/cafe\u0301.py"
    path = make_wheel(tmp_path, "demo", files={INIT: "", nfc: "", nfd: ""})
    refused(path, "collide")


def test_file_and_folder_of_one_name_are_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo/x": "", "demo/x/y.py": ""})
    refused(path, "'demo/x' is both a file and a folder")


def test_duplicate_zip_member_is_refused(tmp_path: Path) -> None:
    entries = members()
    path = write_zip(tmp_path / WHEEL, [(INIT, b"VALUE = 1\n"), *entries])
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist().count(INIT) == 2
    refused(path, f"members {INIT!r} and {INIT!r} collide")


def test_member_name_in_cp437_is_refused(tmp_path: Path) -> None:
    # A name stored without the UTF-8 flag: Python decodes its bytes as cp437
    # ("caf├⌐.py") while other unzippers take them as UTF-8 ("café.py"). RECORD lists the
    # cp437 reading, so only the flag check can catch it.
    utf8 = "demo/café.py".encode()
    as_cp437 = utf8.decode("cp437")
    placeholder = "demo/cafXX.py"
    assert len(placeholder.encode()) == len(utf8)
    entries = members({INIT: b"", as_cp437: b""})
    entries = [(placeholder if n == as_cp437 else n, d) for n, d in entries]
    path = write_zip(tmp_path / WHEEL, entries)
    raw = path.read_bytes()
    assert raw.count(placeholder.encode()) == 2  # local header and central directory
    path.write_bytes(raw.replace(placeholder.encode(), utf8))
    with zipfile.ZipFile(path) as zf:
        assert as_cp437 in zf.namelist()
    refused(path, f"member name {as_cp437!r} is not marked as UTF-8")


# Member types (A3)


@pytest.mark.parametrize("mode", [0o120777, stat.S_IFIFO | 0o644, stat.S_IFCHR | 0o644,
                                  stat.S_IFBLK | 0o644, stat.S_IFSOCK | 0o644])
def test_member_that_is_not_a_regular_file_is_refused(tmp_path: Path, mode: int) -> None:
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = []
    for name, data in members({INIT: b"", "demo/link.py": b"__init__.py"}):
        info = zipfile.ZipInfo(name)
        info.external_attr = (mode if name == "demo/link.py" else 0o100644) << 16
        entries.append((info, data))
    refused(write_zip(tmp_path / WHEEL, entries), "member 'demo/link.py' is not a regular file")


# RECORD (H5)


def test_member_not_in_record_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", extra_members={"demo/extra.py": b"import os\n"})
    refused(path, "'demo/extra.py' is not listed in RECORD")


def test_record_row_with_no_file_is_refused(tmp_path: Path) -> None:
    init = b"__version__ = '1.0'\n"
    rows = [record_row(INIT, init), record_row("demo/gone.py", b""),
            record_row(f"{DIST_INFO}/METADATA", metadata()),
            record_row(f"{DIST_INFO}/WHEEL", wheel_file()), [f"{DIST_INFO}/RECORD", "", ""]]
    path = make_wheel(tmp_path, "demo", record_override=rows)
    refused(path, "RECORD lists 'demo/gone.py', which the wheel lacks")


def test_tampered_member_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", extra_members={INIT: b"import os; os.system('x')\n"})
    refused(path, f"{INIT!r} does not match its RECORD hash or size")


def test_member_with_the_wrong_size_is_refused(tmp_path: Path) -> None:
    data = b"VALUE = 1\n"
    rows = [[INIT, record_row(INIT, data)[1], str(len(data) + 1)],
            record_row(f"{DIST_INFO}/METADATA", metadata()),
            record_row(f"{DIST_INFO}/WHEEL", wheel_file()), [f"{DIST_INFO}/RECORD", "", ""]]
    path = make_wheel(tmp_path, "demo", files={INIT: data}, record_override=rows)
    refused(path, f"{INIT!r} does not match its RECORD hash or size")


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha224"])
def test_weak_hash_in_record_is_refused(tmp_path: Path, algorithm: str) -> None:
    data = b"VALUE = 1\n"
    weak = f"{algorithm}={b64(hashlib.new(algorithm, data).digest())}"
    rows = [row if row[0] != INIT else [INIT, weak, str(len(data))] for row in _good_rows()]
    path = make_wheel(tmp_path, "demo", files={INIT: data}, record_override=rows)
    err = refused(path, f"RECORD uses {algorithm} for {INIT!r}")
    assert "only sha256, sha384 and sha512" in str(err)


def test_sha512_in_record_is_accepted(tmp_path: Path) -> None:
    data = b"VALUE = 1\n"
    rows = [row if row[0] != INIT else
            [INIT, f"sha512={b64(hashlib.sha512(data).digest())}", str(len(data))]
            for row in _good_rows()]
    path = make_wheel(tmp_path, "demo", files={INIT: data}, record_override=rows)
    assert check_wheel(path).imports == ("demo",)


def _good_rows() -> list[list[str]]:
    return [record_row(INIT, b"VALUE = 1\n"), record_row(f"{DIST_INFO}/METADATA", metadata()),
            record_row(f"{DIST_INFO}/WHEEL", wheel_file()), [f"{DIST_INFO}/RECORD", "", ""]]


def test_record_row_without_hash_is_refused(tmp_path: Path) -> None:
    rows = [row if row[0] != INIT else [INIT, "", "10"] for row in _good_rows()]
    path = make_wheel(tmp_path, "demo", files={INIT: "VALUE = 1\n"}, record_override=rows)
    refused(path, f"RECORD has no hash or size for {INIT!r}")


def test_duplicate_record_row_is_refused(tmp_path: Path) -> None:
    rows = _good_rows()
    path = make_wheel(tmp_path, "demo", files={INIT: "VALUE = 1\n"},
                      record_override=[rows[0], *rows])
    refused(path, f"RECORD lists {INIT!r} twice")


@pytest.mark.parametrize(("bad_row", "fragment"), [
    (["demo/x.py", "sha256=abc"], "RECORD cannot be parsed (row 4 has 2 fields, not 3"),
    (["demo/x.py", "sha256=abc", "ten"], "RECORD row for 'demo/x.py' is invalid"),
    (["demo/x.py", "nosuchhash=abc", "1"], "RECORD row for 'demo/x.py' is invalid"),
    (["demo/x.py", "sha256", "1"], "RECORD row for 'demo/x.py' is invalid"),
    (["", "", ""], "RECORD row for '' is invalid"),
    (["demo/" + "x" * 200_000, "", ""], "RECORD cannot be parsed (field larger than"),
])
def test_record_row_that_cannot_be_parsed_is_refused(tmp_path: Path, bad_row: list[str],
                                                     fragment: str) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "VALUE = 1\n"},
                      record_override=[*_good_rows(), bad_row])
    refused(path, fragment)


def test_record_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, [
        *[(n, d) for n, d in members() if not n.endswith("/RECORD")],
        (f"{DIST_INFO}/RECORD", b"demo/\xff.py,,\n"),
    ])
    refused(path, "RECORD cannot be parsed")


def test_missing_record_is_refused(tmp_path: Path) -> None:
    refused(make_wheel(tmp_path, "demo", record=False), f"{DIST_INFO}/RECORD is missing")


# Wheel format and .dist-info (H6)


@pytest.mark.parametrize("version", ["2.0", "0.9"])
def test_unsupported_wheel_version_is_refused(tmp_path: Path, version: str) -> None:
    path = write_zip(tmp_path / WHEEL, members(wheel=wheel_file(version)))
    refused(path, f"Wheel-Version {version} is not supported (only 1.x)")


def test_missing_wheel_version_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, members(wheel=b"Generator: x\n"))
    refused(path, "WHEEL has no valid Wheel-Version")


def test_two_dist_info_folders_are_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={
        INIT: "", "other-1.0.dist-info/METADATA": metadata("other").decode()})
    err = refused(path, "expected exactly one .dist-info folder")
    assert "other-1.0.dist-info" in str(err)
    assert DIST_INFO in str(err)


def test_no_dist_info_folder_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, [(INIT, b"")])
    refused(path, "expected exactly one .dist-info folder, found none")


@pytest.mark.parametrize("dist_info", ["other-1.0.dist-info", "demo-1.1.dist-info"])
def test_dist_info_not_matching_the_filename_is_refused(tmp_path: Path, dist_info: str) -> None:
    path = write_zip(tmp_path / WHEEL, members(dist_info=dist_info))
    refused(path, f"{dist_info} does not match the filename's demo 1.0")


@pytest.mark.parametrize(("name", "version"), [("other", "1.0"), ("demo", "1.1")])
def test_metadata_not_matching_the_filename_is_refused(tmp_path: Path, name: str,
                                                       version: str) -> None:
    path = write_zip(tmp_path / WHEEL, members(meta=metadata(name, version)))
    refused(path, f"METADATA says {name} {version}, the filename demo 1.0")


def test_metadata_without_name_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, members(meta=b"Metadata-Version: 2.1\nVersion: 1.0\n"))
    refused(path, "METADATA lacks Name or Version")


@pytest.mark.parametrize("required", ["METADATA", "WHEEL"])
def test_missing_metadata_file_is_refused(tmp_path: Path, required: str) -> None:
    path = write_zip(tmp_path / WHEEL, [(n, d) for n, d in members()
                                        if n != f"{DIST_INFO}/{required}"])
    refused(path, f"{DIST_INFO}/{required} is missing")


def test_invalid_wheel_filename_is_refused() -> None:
    with pytest.raises(WheelError, match="not a valid wheel filename"):
        parse_filename("demo-1.0.tar.gz")
    assert parse_filename("demo_pkg-1.0-1build-cp311-cp311-linux_x86_64.whl") == (
        "demo_pkg", "1.0")


# .data (A10)


def test_unknown_data_scheme_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo-1.0.data/bogus/x.txt": ""})
    refused(path, "'demo-1.0.data/bogus/x.txt' is not in a known .data scheme")


def test_data_scheme_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo-1.0.data/purelib": ""})
    refused(path, "is not in a known .data scheme")


def test_data_folder_of_another_distribution_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", "other-1.0.data/purelib/x.py": ""})
    refused(path, f"other-1.0.data/ does not match {DIST_INFO}")


@pytest.mark.parametrize("name", ["demo-1.0.data/purelib/../x",
                                  "demo-1.0.data/purelib/../../x.py",
                                  "demo-1.0.data/../evil.py"])
def test_data_escape_is_refused(tmp_path: Path, name: str) -> None:
    path = make_wheel(tmp_path, "demo", files={INIT: "", name: ""})
    refused(path, f"unsafe member name {name!r}")


def test_known_data_schemes_are_accepted(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo", files={
        f"demo-1.0.data/{scheme}/x/__init__.py": "" for scheme in wheelcheck.DATA_SCHEMES})
    assert check_wheel(path).imports == ("x",)


# Not a wheel at all, and zip bombs (A7)


@pytest.mark.parametrize("raw", [b"", b"not a zip file", b"PK\x03\x04" + b"\0" * 100])
def test_file_that_is_not_a_zip_is_refused(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / WHEEL
    path.write_bytes(raw)
    refused(path, "not a valid zip archive")


def test_truncated_wheel_is_refused(tmp_path: Path) -> None:
    path = make_wheel(tmp_path, "demo")
    path.write_bytes(path.read_bytes()[:-30])
    refused(path, "not a valid zip archive")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    refused(tmp_path / WHEEL, "cannot read")


def test_corrupt_member_data_is_refused(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    path = write_zip(tmp_path / WHEEL, members({INIT: data}))
    raw = bytearray(path.read_bytes())
    start = raw.index(INIT.encode()) + len(INIT) + 8
    for i in range(start, start + 64):
        raw[i] ^= 0x55
    path.write_bytes(bytes(raw))
    refused(path, "not a valid zip archive (Error -3 while decompressing data")


def _patch_first_member(raw: bytes, *, flag: int = 0, method: int | None = None) -> bytes:
    """Set a flag bit or the compression method in the first member's two headers."""
    out = bytearray(raw)
    local = out.index(b"PK\x03\x04")
    central = out.index(b"PK\x01\x02")
    for flags_at, method_at in ((local + 6, local + 8), (central + 8, central + 10)):
        out[flags_at] |= flag
        if method is not None:
            out[method_at:method_at + 2] = method.to_bytes(2, "little")
    return bytes(out)


def test_member_with_unknown_compression_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, members())
    path.write_bytes(_patch_first_member(path.read_bytes(), method=99))
    refused(path, "compression method 99, which is not supported")


def test_encrypted_member_is_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / WHEEL, members())
    path.write_bytes(_patch_first_member(path.read_bytes(), flag=0x1))
    refused(path, f"member {INIT!r} is encrypted")


def test_declared_size_zip_bomb_is_refused(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_MAX_UNPACKED", str(1024 * 1024))
    zeros = b"\0" * (4 * 1024 * 1024)
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo/zeros.bin": zeros})
    assert path.stat().st_size * 20 < len(zeros)
    refused(path, "bytes, more than the 1048576 allowed")


def test_size_limit_grows_with_the_compressed_size(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_MAX_UNPACKED", "1024")
    # Incompressible data: unpacks to about what it takes, well under 20 times.
    noise = b"".join(hashlib.sha256(bytes([i, j])).digest() for i in range(64) for j in range(8))
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo/noise.bin": noise})
    assert check_wheel(path).imports == ("demo",)


def test_too_many_members_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_MAX_MEMBERS", "3")
    path = make_wheel(tmp_path, "demo", files={INIT: "", "demo/a.py": ""})
    refused(path, "5 members, more than 3")


def test_wheel_error_is_a_carton_error_and_a_value_error(tmp_path: Path) -> None:
    err = refused(make_wheel(tmp_path, "demo", record=False), "RECORD is missing")
    assert isinstance(err, CartonError)
    assert isinstance(err, ValueError)
