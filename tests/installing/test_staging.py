"""installing/staging.py: a wheel's members staged while its file is still being
written, as a download writes it: what is staged and when, and where the reader stops.
The helper's use of it (linking what matches RECORD) is in test_splitunpack.py."""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.installing import staging
from carton_hook.installing.splitunpack import _shareable

from ..waiting import wait_for
from ..wheelzip import central_directory_at, members, write_zip

# Staged at any speed (conftest.py), but in the test that passes its own `fast`.
pytestmark = pytest.mark.usefixtures("any_speed")

# The size of a download that has not ended yet, for a file written whole beforehand.
STILL_COMING = 1 << 40
FILES = {"demo/__init__.py": b"VALUE = 1\n", "demo/data.txt": b"plain data\n" * 50,
         "demo/sub/helper.py": b"def helper():\n    return 'help'\n"}


def digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


class Download:
    """A file written in parts, as a download writes it, and the word that it is done."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.written = path, data, 0
        self.complete = threading.Event()

    def write_to(self, end: int) -> None:
        with self.path.open("ab") as out:
            out.write(self.data[self.written:end])
        self.written = end

    def finish(self) -> None:
        self.write_to(len(self.data))
        self.complete.set()


def run_in_thread(stager: staging.Stager, download: Download,
                  on_complete: Callable[[], None] = lambda: None) -> threading.Thread:
    thread = threading.Thread(target=stager.run, args=(download.complete.wait, on_complete),
                              daemon=True)
    thread.start()
    return thread


def test_members_are_staged_before_the_download_ends(tmp_path: Path) -> None:
    """The file does not exist yet when the reader starts; every plain member is staged
    from what has arrived, before the central directory (the end of the file) has."""
    wheel = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members(FILES))
    data = wheel.read_bytes()
    download = Download(tmp_path / "download.whl", data)
    (tmp_path / "stage").mkdir()
    stager = staging.Stager(str(download.path), str(tmp_path / "stage"), 1 << 30, len(data),
                            _shareable)
    heard: list[int] = []
    thread = run_in_thread(stager, download, lambda: heard.append(len(stager.staged)))
    time.sleep(0.05)  # the reader waits for the file to be created
    download.write_to(central_directory_at(data))
    wait_for(lambda: len(stager.staged) == len(FILES), "the plain members to be staged")
    # The word, then the central directory's bytes: a reader that read those first would
    # stop there on its own (they are no member) before the word came, which the helper
    # handles (splitunpack.helper_main: "it stopped early"), and `heard` would be empty.
    download.complete.set()
    download.finish()
    thread.join(30)
    assert not thread.is_alive()
    assert heard == [len(FILES)]  # told once, with everything staged already
    assert set(stager.staged) == set(FILES)  # not the .dist-info members
    for name, staged in stager.staged.items():
        assert Path(staged.path).parent == tmp_path / "stage"  # a number, not the name
        assert Path(staged.path).read_bytes() == FILES[name]
        assert (staged.digest, staged.size) == (digest(FILES[name]), len(FILES[name]))


def _size(path: str) -> int:
    """The size of a staged file, 0 until it exists (the stager names the member it
    stages, `current`, just before it creates its file)."""
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


def test_a_big_member_is_staged_as_its_bytes_arrive_and_dropped_when_told(
        tmp_path: Path) -> None:
    big = os.urandom(3 << 20)
    wheel = write_zip(tmp_path / "demo-1.0-py3-none-any.whl",
                      members({"demo/__init__.py": b"", "demo/big.bin": big}))
    data = wheel.read_bytes()
    download = Download(tmp_path / "download.whl", data)
    (tmp_path / "stage").mkdir()
    stager = staging.Stager(str(download.path), str(tmp_path / "stage"), 1 << 30, len(data),
                            _shareable)
    current: list[staging.Current | None] = []

    def on_complete() -> None:
        current.append(stager.current)
        stager.drop_current = True

    thread = run_in_thread(stager, download, on_complete)
    download.write_to(data.index(big[:64]) + len(big) // 2)
    wait_for(lambda: stager.current is not None and stager.current.name == "demo/big.bin"
             and _size(stager.current.path) > 0, "the big member to be staged")
    download.complete.set()  # the word first: the member still in progress is dropped
    download.finish()
    thread.join(30)
    assert [c.name if c else None for c in current] == ["demo/big.bin"]
    assert set(stager.staged) == {"demo/__init__.py"}


def test_behind_the_download_small_members_are_left_and_big_ones_staged(
        tmp_path: Path) -> None:
    """All of it has arrived (far ahead of the reader): only members of BIG bytes or more
    are staged; the small ones are unpacked after the download, by two processes."""
    big = os.urandom(staging.BIG)
    filler = {f"demo/pad{i}.bin": os.urandom(64 << 10) for i in range(80)}  # > LAG after
    files = {"demo/a.py": b"A = 1\n", "demo/big.bin": big, **filler}
    wheel = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members(files))
    (tmp_path / "stage").mkdir()
    stager = staging.Stager(str(wheel), str(tmp_path / "stage"), 1 << 30, STILL_COMING,
                            _shareable)
    stager.run(lambda timeout: False, lambda: None)  # all of it there, no word
    assert "demo/big.bin" in stager.staged
    assert "demo/a.py" not in stager.staged  # more than LAG behind: left
    assert set(stager.staged) < set(files)


def data_descriptor_wheel(path: Path) -> Path:
    """A wheel whose members' sizes follow their bytes (written to a stream that cannot
    seek back, as a pipe is), which the reader cannot stream."""

    class Unseekable:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, data: bytes) -> int:
            self.data += data
            return len(data)

        def tell(self) -> int:
            return len(self.data)

        def flush(self) -> None:
            pass

    out = Unseekable()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for name, data in members(FILES):
            zf.writestr(name, data)
    path.write_bytes(bytes(out.data))
    return path


def patched_size(path: Path, name: str, size: int) -> Path:
    """The wheel with `name`'s local header declaring `size` unpacked bytes."""
    data = bytearray(path.read_bytes())
    at = 0  # the first local header
    while True:
        name_length = struct.unpack("<H", data[at + 26:at + 28])[0]
        extra_length = struct.unpack("<H", data[at + 28:at + 30])[0]
        compressed = struct.unpack("<I", data[at + 18:at + 22])[0]
        if data[at + 30:at + 30 + name_length].decode() == name:
            data[at + 22:at + 26] = struct.pack("<I", size)
            path.write_bytes(bytes(data))
            return path
        at += 30 + name_length + extra_length + compressed


@pytest.mark.parametrize("case", ["data descriptor", "more than declared", "over the limit"])
def test_the_reader_stops_at_what_it_does_not_stream(tmp_path: Path, case: str) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    limit = 1 << 30
    if case == "data descriptor":
        data_descriptor_wheel(wheel)
    else:
        write_zip(wheel, members(FILES))
        if case == "more than declared":  # a bomb: more bytes than its header says
            patched_size(wheel, "demo/__init__.py", len(FILES["demo/__init__.py"]) - 1)
        else:
            limit = len(FILES["demo/__init__.py"]) + 1
    (tmp_path / "stage").mkdir()
    stager = staging.Stager(str(wheel), str(tmp_path / "stage"), limit, STILL_COMING,
                            _shareable)
    stager.run(lambda timeout: False, lambda: None)
    expected = {"over the limit": {"demo/__init__.py"}}.get(case, set())
    assert set(stager.staged) == expected  # nothing after where it stopped


def test_a_hostile_member_name_is_staged_under_a_number(tmp_path: Path) -> None:
    """Names are not checked while staging: none is used as a path. Only the helper's
    job, whose names were checked, says where a staged file goes."""
    wheel = write_zip(tmp_path / "w" / "demo-1.0-py3-none-any.whl",
                      [("../../evil.py", b"EVIL = 1\n"), *members(FILES)])
    stage = tmp_path / "w" / "stage"
    stage.mkdir()
    stager = staging.Stager(str(wheel), str(stage), 1 << 30, STILL_COMING, _shareable)
    stager.run(lambda timeout: False, lambda: None)
    assert Path(stager.staged["../../evil.py"].path).parent == stage
    assert not (tmp_path / "evil.py").exists()
    assert sorted(os.listdir(stage)) == sorted(str(i) for i in range(len(FILES) + 1))


def test_once_the_whole_file_has_arrived_nothing_more_is_staged(tmp_path: Path) -> None:
    """The rest is unpacked in the wheel's turn: a wheel downloaded early does not take
    the cores from the one the model imports first."""
    wheel = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members(FILES))
    (tmp_path / "stage").mkdir()
    stager = staging.Stager(str(wheel), str(tmp_path / "stage"), 1 << 30,
                            wheel.stat().st_size, _shareable)
    stager.run(lambda timeout: False, lambda: None)
    assert stager.staged == {}


def test_a_download_arriving_faster_than_a_network_is_left_alone(tmp_path: Path) -> None:
    """The loopback or a fast mirror: over before staging would win much; its members are
    unpacked in the wheel's turn, not beside the wheel the model imports first. (Judged
    after its first 20 ms: what was staged by then stays staged.)"""
    files = {f"demo/m{i:02}.bin": os.urandom(2 << 20) for i in range(40)}
    wheel = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members(files))
    data = wheel.read_bytes()
    download = Download(tmp_path / "download.whl", data)
    (tmp_path / "stage").mkdir()
    stager = staging.Stager(str(download.path), str(tmp_path / "stage"), 1 << 30, len(data),
                            _shareable, fast=50_000_000)
    thread = run_in_thread(stager, download)
    started = time.monotonic()
    for end in range(2 << 20, len(data), 2 << 20):  # 2 MB each 10 ms: 200 MB/s
        download.write_to(end)
        time.sleep(max(0.0, started + end / 200e6 - time.monotonic()))
    download.finish()
    thread.join(30)
    assert len(stager.staged) <= 8  # of 40: the first 20 ms' at most
