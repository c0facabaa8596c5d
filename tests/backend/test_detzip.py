"""carton_backend.detzip: zip entries that depend only on their bytes (fixed time from
SOURCE_DATE_EPOCH or 1980, mode 0644 or 0755, stored or deflated, no host fields)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest

from carton_backend import detzip

EPOCH_2023 = 1700000000  # 2023-11-14 22:13:20 UTC


@pytest.fixture(autouse=True)
def no_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)


def written(*members: tuple[str, bytes, bool, bool]) -> bytes:
    """A zip of (name, data, executable, stored) members, written with write_bytes."""
    buf = io.BytesIO()
    with detzip.open_zip(buf) as zf:
        for name, data, executable, stored in members:
            detzip.write_bytes(zf, name, data, executable=executable, stored=stored)
    return buf.getvalue()


def mode(info: zipfile.ZipInfo) -> int:
    return info.external_attr >> 16


def test_without_source_date_epoch_the_time_is_1980() -> None:
    assert detzip.source_date_epoch() == detzip.EPOCH_1980
    assert detzip.zip_timestamp() == (1980, 1, 1, 0, 0, 0)


def test_source_date_epoch_is_taken_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH_2023))
    try:
        with monkeypatch.context() as local:
            local.setenv("TZ", "UTC-14")  # POSIX sign: 14 hours east, where it is the 15th
            time.tzset()
            assert time.localtime(EPOCH_2023).tm_mday == 15
            assert detzip.source_date_epoch() == EPOCH_2023
            assert detzip.zip_timestamp() == (2023, 11, 14, 22, 13, 20)
    finally:
        time.tzset()  # TZ is back as it was


@pytest.mark.parametrize("value", ["0", "315532799", "-5", "not-a-number", "", "1.5e9"])
def test_an_epoch_zip_cannot_store_or_that_is_not_an_integer_is_1980(
        value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    assert detzip.source_date_epoch() == detzip.EPOCH_1980
    assert detzip.zip_timestamp() == (1980, 1, 1, 0, 0, 0)


def test_an_entry_fixes_everything_but_name_and_content(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH_2023))
    info = detzip.entry("pkg/mod.py", size=12)
    assert info.filename == "pkg/mod.py"
    assert info.date_time == (2023, 11, 14, 22, 13, 20)
    assert info.create_system == 3  # Unix: the mode in external_attr is read as one
    assert mode(info) == stat.S_IFREG | 0o644
    assert info.compress_type == zipfile.ZIP_DEFLATED
    assert info.file_size == 12
    assert mode(detzip.entry("run.sh", executable=True)) == stat.S_IFREG | 0o755
    assert detzip.entry("x.whl", stored=True).compress_type == zipfile.ZIP_STORED


def test_members_read_back_with_their_modes_and_compression() -> None:
    data = b"print('hello')\n" * 200
    with zipfile.ZipFile(io.BytesIO(written(("a.py", data, False, False),
                                            ("run.sh", b"#!/bin/sh\n", True, False),
                                            ("b.whl", data, False, True)))) as zf:
        a, run, whl = zf.infolist()
        assert zf.read("a.py") == data and zf.read("b.whl") == data
    assert (a.compress_type, a.compress_size < len(data)) == (zipfile.ZIP_DEFLATED, True)
    assert (whl.compress_type, whl.compress_size) == (zipfile.ZIP_STORED, len(data))
    assert stat.S_IMODE(mode(a)) == 0o644 and stat.S_IMODE(mode(run)) == 0o755
    assert {i.date_time for i in (a, run, whl)} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.extra for i in (a, run, whl)} == {b""}  # no host-specific extra fields


def test_the_members_are_deflated_at_zlibs_default_level() -> None:
    data = bytes(range(256)) * 64 + b"abc" * 5000
    with zipfile.ZipFile(io.BytesIO(written(("d.bin", data, False, False)))) as zf:
        info = zf.getinfo("d.bin")
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert info.compress_size == len(compressor.compress(data) + compressor.flush())


def test_the_same_members_give_the_same_bytes() -> None:
    members = (("a.py", b"A = 1\n", False, False), ("run.sh", b"#!/bin/sh\n", True, False))
    assert written(*members) == written(*members)


def test_a_streamed_file_leaves_its_time_and_mode_on_disk_behind(tmp_path: Path) -> None:
    """Two copies of one file, one old and private, one new and world-writable: the same
    member, and the same sha256 returned while streaming (over more than one chunk)."""
    data = os.urandom(detzip.CHUNK + 12345)
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    for path, file_mode, when in ((old, 0o600, 400_000_000), (new, 0o666, 2_000_000_000)):
        path.write_bytes(data)
        path.chmod(file_mode)
        os.utime(path, (when, when))
    archives = []
    for path in (old, new):
        buf = io.BytesIO()
        with detzip.open_zip(buf) as zf:
            digest = detzip.write_file(zf, "data/weights.bin", path)
        assert digest == hashlib.sha256(data).hexdigest()
        archives.append(buf.getvalue())
    assert archives[0] == archives[1]
    with zipfile.ZipFile(io.BytesIO(archives[0])) as zf:
        info = zf.getinfo("data/weights.bin")
        assert zf.read(info) == data
    assert (stat.S_IMODE(mode(info)), info.date_time) == (0o644, (1980, 1, 1, 0, 0, 0))
    assert info.file_size == len(data)


def test_a_streamed_file_can_be_executable_and_stored(tmp_path: Path) -> None:
    path = tmp_path / "tool.whl"
    path.write_bytes(b"PK\x03\x04 not really a wheel")
    buf = io.BytesIO()
    with detzip.open_zip(buf) as zf:
        detzip.write_file(zf, "tool.whl", path, executable=True, stored=True)
    with zipfile.ZipFile(buf) as zf:
        info = zf.getinfo("tool.whl")
    assert stat.S_IMODE(mode(info)) == 0o755
    assert (info.compress_type, info.compress_size) == (zipfile.ZIP_STORED, path.stat().st_size)
