"""Reading a remote file by byte ranges: the same bytes as the file, a fraction of it
fetched, and a clear refusal where the server sends whole files only."""

from __future__ import annotations

import io
import os
import random
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from carton_backend.network.httpclient import HttpClient
from carton_backend.network.rangefile import BLOCK, TAIL, RangeFile, RangesUnsupported

from ...factory import make_wheel
from ...indexserver import PackageIndex


def test_any_read_gives_the_files_bytes(tmp_path: Path, private: PackageIndex) -> None:
    data = os.urandom(3 * TAIL + 12345)
    (tmp_path / "blob-1.0-py3-none-any.whl").write_bytes(data)
    private.add(tmp_path / "blob-1.0-py3-none-any.whl")
    remote = RangeFile(HttpClient(), private.file_url("blob-1.0-py3-none-any.whl"))
    assert remote.size == len(data)
    assert remote.fetched == TAIL and remote.requests == 1  # the end, first
    rng = random.Random(7)
    for _ in range(200):
        start = rng.randrange(len(data))
        size = rng.choice([1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK])
        remote.seek(start)
        assert remote.read(size) == data[start:start + size]
    remote.seek(-10, io.SEEK_END)
    assert remote.read() == data[-10:]
    assert remote.read(5) == b""
    assert remote.fetched <= len(data)  # each block once


def test_a_big_wheel_is_checked_from_a_small_part(tmp_path: Path, private: PackageIndex) -> None:
    """What locking reads of a wheel (its directory and metadata) is a small part of it."""
    wheel = make_wheel(tmp_path, "big", "1.0", {"big/__init__.py": "",
                                                "big/weights.bin": os.urandom(4_000_000)})
    private.add(wheel)
    private.reset_counts()
    with RangeFile(HttpClient(), private.file_url(wheel.name)) as remote, \
            zipfile.ZipFile(io.BufferedReader(remote, buffer_size=BLOCK)) as zf:
        assert sorted(zf.namelist()) == sorted(zipfile.ZipFile(wheel).namelist())
        assert zf.read("big-1.0.dist-info/METADATA").startswith(b"Metadata-Version")
    assert private.bytes_sent <= TAIL + BLOCK < wheel.stat().st_size / 10


@pytest.fixture
def whole_files_only(tmp_path: Path) -> Iterator[str]:
    """A server that ignores `Range` (http.server's), serving `tmp_path`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_without_ranges_is_refused_for_a_whole_download(
        tmp_path: Path, whole_files_only: str) -> None:
    (tmp_path / "x.whl").write_bytes(b"x" * 1000)
    with pytest.raises(RangesUnsupported) as info:
        RangeFile(HttpClient(), whole_files_only + "x.whl")
    assert "does not answer range requests" in str(info.value)
    assert str(info.value).startswith(whole_files_only + "x.whl: ")
