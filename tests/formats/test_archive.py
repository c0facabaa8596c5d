"""carton_hook/formats/archive.py: the `.carton` header files, and reading an archive back with
every member checked against MANIFEST."""

from __future__ import annotations

import hashlib
import re
import sys
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from carton_hook.errors import ArchiveError, CartonError
from carton_hook.formats.archive import (
    CARTON_TOML,
    MANIFEST,
    CartonInfo,
    format_carton_toml,
    format_manifest,
    parse_carton_toml,
    parse_manifest,
    read_archive,
)

INFO = CartonInfo(name="demo-model", version="0.1.0", entrypoint="model:main",
                  requires_python=">=3.10", created_by="carton 0.1.0")
MODEL = {
    "model/model.py": b"def main():\n    return 0\n",
    "model/.carton/carton.lock": b'{"lock-version": 1}\n',
    "model/weights/a=b.bin": bytes(range(256)) * 64,
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(files: Mapping[str, bytes]) -> dict[str, str]:
    return {name: sha(data) for name, data in files.items()}


def write_zip(path: Path, entries: Sequence[tuple[str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted in one test
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in entries:
                zf.writestr(name, data)
    return path


def write_carton(path: Path, files: Mapping[str, bytes] | None = None, *,
                 manifest: Mapping[str, str] | None = None,
                 toml: bytes | None = None) -> Path:
    files = dict(MODEL if files is None else files)
    manifest = manifest_of(files) if manifest is None else manifest
    return write_zip(path, [
        (CARTON_TOML, format_carton_toml(INFO) if toml is None else toml),
        (MANIFEST, format_manifest(dict(manifest))),
        *files.items(),
    ])


def refused(path: Path, fragment: str) -> ArchiveError:
    with pytest.raises(ArchiveError) as info:
        read_archive(path)
    err = info.value
    assert err.path == str(path)
    assert str(err).startswith(f"{path}: ")
    assert fragment in str(err), str(err)
    return err


# MANIFEST


def test_manifest_round_trip_with_equals_signs_in_paths() -> None:
    entries = {"model/a=b.bin": sha(b"1"), "model/x==.txt": sha(b"2"), "model/z.py": sha(b"3")}
    raw = format_manifest(entries)
    assert parse_manifest(raw, "demo.carton") == entries
    assert format_manifest(parse_manifest(raw, "demo.carton")) == raw


def test_manifest_is_sorted_with_one_line_per_entry() -> None:
    raw = format_manifest({"model/b": sha(b"b"), "model/a": sha(b"a")})
    assert raw == f"model/a={sha(b'a')}\nmodel/b={sha(b'b')}\n".encode()
    assert format_manifest({}) == b""


def test_manifest_keeps_non_ascii_paths() -> None:
    entries = {"model/données/é.txt": sha(b"x")}
    raw = format_manifest(entries)
    assert "données".encode() in raw
    assert parse_manifest(raw, "demo.carton") == entries


@pytest.mark.parametrize(("raw", "line"), [
    (b"model/a\n", 1),
    (f"={sha(b'a')}\n".encode(), 1),
    (f"model/a={sha(b'a')}\nmodel/b=abc\n".encode(), 2),
    (f"model/a={sha(b'a')}0\n".encode(), 1),
])
def test_malformed_manifest_line_is_refused(raw: bytes, line: int) -> None:
    with pytest.raises(ArchiveError, match=re.escape(f"demo.carton: MANIFEST line {line} is not")):
        parse_manifest(raw, "demo.carton")


def test_manifest_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ArchiveError, match="MANIFEST is not UTF-8"):
        parse_manifest(b"model/\xff=" + sha(b"").encode() + b"\n", "demo.carton")


# carton.toml


def test_carton_toml_round_trip() -> None:
    raw = format_carton_toml(INFO)
    assert raw.startswith(b"format = 1\n")
    assert parse_carton_toml(raw, "demo.carton") == INFO


@pytest.mark.parametrize("value", [
    'say "hi"',
    "back\\slash and 'single'",
    "naïve café",
    "模型",
    "rocket \U0001f680 model",
    "tab\tnew\nline",
    "del\x7fchar",
    "\u2028line separator",
])
def test_carton_toml_round_trip_with_odd_values(value: str) -> None:
    # The entrypoint is checked as well as read (test_threats_carton), so it stays plain.
    info = CartonInfo(name=value, version=value, entrypoint="pkg.mod:main",
                      requires_python=value, created_by=value)
    assert parse_carton_toml(format_carton_toml(info), "demo.carton") == info


def test_carton_toml_is_read_by_a_real_toml_parser() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    info = CartonInfo("demo", "1.0", "pkg.mod:main", ">=3.10,<4", "carton 0.1.0 ☃ \U0001f680")
    data = tomllib.loads(format_carton_toml(info).decode("utf-8"))
    assert data == {"format": 1, "name": "demo", "version": "1.0", "entrypoint": "pkg.mod:main",
                    "requires-python": ">=3.10,<4", "created-by": "carton 0.1.0 ☃ \U0001f680"}


@pytest.mark.parametrize("fmt", ["2", "0", '"1"', "true", "1.0", "1.5"])
def test_unknown_carton_toml_format_is_refused(fmt: str) -> None:
    raw = format_carton_toml(INFO).replace(b"format = 1\n", f"format = {fmt}\n".encode())
    with pytest.raises(ArchiveError) as info:
        parse_carton_toml(raw, "demo.carton")
    assert str(info.value).startswith("demo.carton: carton.toml format ")
    assert "is not supported (this carton reads 1); upgrade carton" in str(info.value)


def test_carton_toml_without_format_is_refused() -> None:
    raw = format_carton_toml(INFO).replace(b"format = 1\n", b"")
    with pytest.raises(ArchiveError, match=re.escape("carton.toml format None is not supported")):
        parse_carton_toml(raw, "demo.carton")


@pytest.mark.parametrize("key", ["name", "version", "entrypoint", "requires-python",
                                 "created-by"])
def test_carton_toml_missing_a_field_is_refused(key: str) -> None:
    lines = [line for line in format_carton_toml(INFO).decode().splitlines(keepends=True)
             if not line.startswith(f"{key} = ")]
    message = f"demo.carton: carton.toml: `{key}` is missing or not a string"
    with pytest.raises(ArchiveError, match=re.escape(message)):
        parse_carton_toml("".join(lines).encode(), "demo.carton")


def test_carton_toml_field_that_is_not_a_string_is_refused() -> None:
    raw = format_carton_toml(INFO).replace(b'version = "0.1.0"', b"version = 1")
    message = "demo.carton: carton.toml: `version` is missing or not a string"
    with pytest.raises(ArchiveError, match=re.escape(message)):
        parse_carton_toml(raw, "demo.carton")


@pytest.mark.parametrize("raw", [b"format = ", b"format = 1\nformat = 1\n", b"\xff"])
def test_carton_toml_that_is_not_toml_is_refused(raw: bytes) -> None:
    with pytest.raises(ArchiveError, match=re.escape("carton.toml is not valid TOML")):
        parse_carton_toml(raw, "demo.carton")


@pytest.mark.parametrize("line", ['name = "a\\/b"', 'name = "\x7f"'])
def test_what_json_reads_but_toml_refuses_is_refused(line: str) -> None:
    from carton_hook.formats.archive import loads_flat_toml

    with pytest.raises(ValueError, match="line 1"):
        loads_flat_toml(line)
    with pytest.raises(ArchiveError, match=re.escape("carton.toml is not valid TOML")):
        parse_carton_toml(f"{line}\nformat = 1\n".encode(), "demo.carton")


def test_carton_toml_in_any_toml_form_is_read() -> None:
    """What carton writes is read without a TOML parser; other valid TOML still is."""
    raw = (b'# written by hand\nformat = 1 # the format\nname = \'demo\'\n'
           b'version = "1.0"\nentrypoint = "m:main"\nrequires-python = ">=3.10"\n'
           b'created-by = "me"\n')
    info = parse_carton_toml(raw, "demo.carton")
    assert (info.name, info.version, info.entrypoint) == ("demo", "1.0", "m:main")


# read_archive


def test_read_archive_returns_header_and_manifest(tmp_path: Path) -> None:
    path = write_carton(tmp_path / "demo.carton")
    info, manifest = read_archive(path)
    assert info == INFO
    assert manifest == manifest_of(MODEL)
    assert "model/weights/a=b.bin" in manifest


def test_read_archive_refuses_a_member_not_in_manifest(tmp_path: Path) -> None:
    manifest = manifest_of(MODEL)
    del manifest["model/model.py"]
    path = write_carton(tmp_path / "demo.carton", manifest=manifest)
    refused(path, "MANIFEST and the archive disagree about 'model/model.py'")


def test_read_archive_refuses_a_manifest_entry_with_no_member(tmp_path: Path) -> None:
    manifest = {**manifest_of(MODEL), "model/gone.py": sha(b"")}
    path = write_carton(tmp_path / "demo.carton", manifest=manifest)
    refused(path, "MANIFEST and the archive disagree about 'model/gone.py'")


def test_read_archive_refuses_a_member_that_does_not_match(tmp_path: Path) -> None:
    manifest = {**manifest_of(MODEL), "model/model.py": sha(b"something else")}
    path = write_carton(tmp_path / "demo.carton", manifest=manifest)
    refused(path, "model/model.py does not match its MANIFEST hash")


@pytest.mark.parametrize("missing", [MANIFEST, CARTON_TOML])
def test_read_archive_refuses_a_missing_header_file(tmp_path: Path, missing: str) -> None:
    entries = [
        (CARTON_TOML, format_carton_toml(INFO)),
        (MANIFEST, format_manifest(manifest_of(MODEL))),
        *MODEL.items(),
    ]
    path = write_zip(tmp_path / "demo.carton", [e for e in entries if e[0] != missing])
    refused(path, f"{missing} is missing; is this a .carton file?")


@pytest.mark.parametrize("name", ["evil.py", "modelx/evil.py", ".carton/carton.lock"])
def test_read_archive_refuses_a_member_outside_model(tmp_path: Path, name: str) -> None:
    path = write_carton(tmp_path / "demo.carton", {**MODEL, name: b"x = 1\n"})
    refused(path, f"{name!r} is outside model/")


def test_read_archive_refuses_a_duplicate_member(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "demo.carton", [
        (CARTON_TOML, format_carton_toml(INFO)),
        (MANIFEST, format_manifest(manifest_of(MODEL))),
        *MODEL.items(),
        ("model/model.py", b"import os\n"),
    ])
    refused(path, "collide")


def test_read_archive_refuses_an_unknown_format(tmp_path: Path) -> None:
    toml = format_carton_toml(INFO).replace(b"format = 1", b"format = 2")
    refused(write_carton(tmp_path / "demo.carton", toml=toml), "carton.toml format 2")


@pytest.mark.parametrize("raw", [b"", b"hello, not a zip", b"PK\x05\x06" + b"\0" * 10])
def test_read_archive_refuses_a_file_that_is_not_a_zip(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "demo.carton"
    path.write_bytes(raw)
    refused(path, "not a .carton archive")


@pytest.mark.parametrize("keep", [0.5, 0.9, -1])
def test_read_archive_refuses_a_truncated_file(tmp_path: Path, keep: float) -> None:
    path = write_carton(tmp_path / "demo.carton")
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)] if keep > 0 else raw[:keep])
    refused(path, "not a .carton archive")


def test_read_archive_refuses_corrupt_member_data(tmp_path: Path) -> None:
    path = write_carton(tmp_path / "demo.carton")
    raw = bytearray(path.read_bytes())
    name = b"model/weights/a=b.bin"
    start = raw.index(name) + len(name) + 8
    for i in range(start, start + 64):
        raw[i] ^= 0x55
    path.write_bytes(bytes(raw))
    refused(path, "model/weights/a=b.bin is damaged (Error -3 while decompressing data")


def test_read_archive_refuses_an_encrypted_member(tmp_path: Path) -> None:
    path = write_carton(tmp_path / "demo.carton")
    raw = bytearray(path.read_bytes())
    # Set the "encrypted" flag on the last member in its local and central headers.
    local = raw.rindex(b"PK\x03\x04")
    central = raw.rindex(b"PK\x01\x02")
    raw[local + 6] |= 0x1
    raw[central + 8] |= 0x1
    path.write_bytes(bytes(raw))
    refused(path, "is encrypted")


def test_read_archive_on_a_missing_file(tmp_path: Path) -> None:
    refused(tmp_path / "nope.carton", "cannot read")


def test_archive_error_is_a_carton_error_and_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "demo.carton"
    path.write_bytes(b"x")
    err = refused(path, "not a .carton archive")
    assert isinstance(err, CartonError)
    assert isinstance(err, ValueError)


def test_duplicate_manifest_line_is_refused() -> None:
    sha = "a" * 64
    raw = f"model/x={sha}\nmodel/x={sha}\n".encode()
    with pytest.raises(ArchiveError, match="lists 'model/x' twice"):
        parse_manifest(raw, "demo.carton")


@pytest.mark.parametrize("name", ["demo", 'a "quoted" \\ name', "ünï 🐍", "tab\there"])
def test_carton_toml_reads_without_a_toml_library(name: str) -> None:
    """A carton packed on 3.11+ that runs on a bare 3.10 has neither tomllib nor tomli."""
    from carton_hook.formats.archive import CartonInfo, format_carton_toml, loads_flat_toml

    raw = format_carton_toml(CartonInfo(name, "1.0", "m:main", ">=3.10", "carton 0.1.0"))
    assert loads_flat_toml(raw.decode()) == {
        "format": 1, "name": name, "version": "1.0", "entrypoint": "m:main",
        "requires-python": ">=3.10", "created-by": "carton 0.1.0"}
    for bad in ("name = [1]", "name 'x'", "name = true", 'a = "1"\na = "2"'):
        with pytest.raises(ValueError, match="line"):
            loads_flat_toml(bad)


def test_the_reserved_member_is_the_caches_completion_marker() -> None:
    from carton_hook.cache.layout import COMPLETE
    from carton_hook.formats.archive import RESERVED_MEMBER

    assert RESERVED_MEMBER == COMPLETE
