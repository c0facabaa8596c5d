"""installing/splitunpack.py: which members of a big wheel a helper process may write,
the helper's own writing and checks (`write_members`, `helper_main`, `start`), and what
the installing process learns of it (`join`, `missing`, `rewrite`). How `install_wheel`
shares a wheel with it is tested with unpack, in test_unpack.py."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from installer.records import Hash, RecordEntry

from carton_hook.errors import WheelError
from carton_hook.formats.wheelcheck import check_wheel
from carton_hook.installing import splitunpack

from ..waiting import wait_for
from ..wheelzip import central_directory_at, members, orphaned, write_zip

# The demo wheel's plain members: what a helper may write.
FILES = {"demo/__init__.py": b"VALUE = 1\n", "demo/data.txt": b"plain data\n",
         "demo/tool.sh": b"#!/bin/sh\necho tool\n",
         "demo/sub/helper.py": b"def helper():\n    return 'help'\n"}
PLAIN = list(FILES)
EXECUTABLE = {"demo/tool.sh"}

needs_two_cores = pytest.mark.skipif((os.cpu_count() or 1) < 2,
                                     reason="a second process unpacks only beside a second core")


def demo_wheel(directory: Path, changed: dict[str, bytes] | None = None) -> Path:
    """The demo wheel, its RECORD computed over FILES, with `changed` members' bytes
    replaced after it (tampering)."""
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = []
    for name, data in members(FILES):
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFREG | (0o755 if name in EXECUTABLE else 0o644)) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        entries.append((info, (changed or {}).get(name, data)))
    return write_zip(directory / "demo-1.0-py3-none-any.whl", entries)


# ---------------------------------------------------------- which members a helper writes


def entry(name: str, size: int | None, algorithm: str = "sha256") -> RecordEntry:
    return RecordEntry(name, Hash(algorithm, "digest"), size)


SHARE_RECORD = {row.path: row for row in (
    entry("pkg/small.py", 10),
    entry("big.so", 500),
    entry("pkg/middle.py", 300),
    entry("demo-1.0.dist-info/METADATA", 900),
    entry("demo-1.0.data/purelib/x.py", 800),
    entry("pkg/__pycache__/a.cpython-311.pyc", 700),
    entry("pkg/other-hash.py", 600, "sha512"),
    RecordEntry("demo-1.0.dist-info/RECORD", None, None),
)}
TOTAL = 10 + 500 + 300 + 900 + 800 + 700 + 600


def test_a_helper_writes_the_roots_plain_members_biggest_first() -> None:
    """Nothing the installer rewrites or places elsewhere (.dist-info, .data), no
    __pycache__ member, and only rows hashed as the installed RECORD is (sha256)."""
    assert splitunpack.helper_share(SHARE_RECORD, 1) == ["big.so", "pkg/middle.py",
                                                         "pkg/small.py"]


def test_a_wheel_smaller_than_the_threshold_unpacked_is_not_shared() -> None:
    assert splitunpack.helper_share(SHARE_RECORD, TOTAL) != []
    assert splitunpack.helper_share(SHARE_RECORD, TOTAL + 1) == []
    assert splitunpack.SPLIT_MIN_BYTES > TOTAL
    assert splitunpack.helper_share(SHARE_RECORD) == []


@pytest.mark.parametrize("cores", [1, None])
def test_one_core_shares_nothing(monkeypatch: pytest.MonkeyPatch, cores: int | None) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert splitunpack.helper_share(SHARE_RECORD, 1) == []


# ---------------------------------------------------------- what the helper writes


def rows(record: dict[str, Any], names: list[str]) -> list[tuple[Any, ...]]:
    """The job's rows of `names`: (name, algorithm, digest, size, executable), as `send`
    sends them."""
    return [(name, record[name].hash_.name, record[name].hash_.value, record[name].size,
             name in EXECUTABLE) for name in names]


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, dict[str, Any], Path, Path]:
    """The demo wheel, its RECORD, and where a helper writes: base below root."""
    wheel = demo_wheel(tmp_path / "dist")
    root = tmp_path / "dest"
    return wheel, check_wheel(wheel, wheel.name, contents=False).record, root / "entry", root


def test_members_are_written_as_they_are_in_the_wheel_with_their_exec_bit(
        demo: tuple[Path, dict[str, Any], Path, Path]) -> None:
    wheel, record, base, root = demo
    splitunpack.write_members(str(wheel), str(base), str(root), rows(record, PLAIN))
    assert {name: (base / name).read_bytes() for name in PLAIN} == {
        name: FILES[name] for name in PLAIN}
    umask = current_umask()
    assert stat.S_IMODE((base / "demo/tool.sh").stat().st_mode) == 0o755 & ~umask
    assert stat.S_IMODE((base / "demo/data.txt").stat().st_mode) == 0o644 & ~umask
    assert splitunpack.missing(str(base), PLAIN, record) is None


def test_a_member_the_installing_process_created_first_is_its_own(
        demo: tuple[Path, dict[str, Any], Path, Path]) -> None:
    wheel, record, base, root = demo
    (base / "demo").mkdir(parents=True)
    (base / "demo" / "data.txt").write_bytes(b"being written by the other process")
    splitunpack.write_members(str(wheel), str(base), str(root), rows(record, PLAIN),
                              claim=True)
    assert (base / "demo" / "data.txt").read_bytes() == b"being written by the other process"
    assert (base / "demo" / "tool.sh").read_bytes() == FILES["demo/tool.sh"]
    with pytest.raises(FileExistsError):  # without claim, an existing file is an error
        splitunpack.write_members(str(wheel), str(base), str(root), rows(record, PLAIN))


@pytest.mark.parametrize("wrong", ["digest", "size"])
def test_a_member_that_does_not_match_its_record_row_is_a_value_error(
        demo: tuple[Path, dict[str, Any], Path, Path], wrong: str) -> None:
    wheel, record, base, root = demo
    name, algorithm, digest, size, _ = rows(record, ["demo/data.txt"])[0]
    row = (name, algorithm, "A" * len(digest), size) if wrong == "digest" else (
        name, algorithm, digest, size + 1)
    with pytest.raises(ValueError, match=r"^'demo/data.txt' does not match its RECORD hash "
                                         r"or size$"):
        splitunpack.write_members(str(wheel), str(base), str(root), [row])


def test_a_folder_outside_the_work_folder_is_refused_before_any_file_is_written(
        demo: tuple[Path, dict[str, Any], Path, Path], tmp_path: Path) -> None:
    wheel, record, _, root = demo
    elsewhere = tmp_path / "elsewhere"
    root.mkdir()
    with pytest.raises(ValueError, match="its folder resolves outside") as caught:
        splitunpack.write_members(str(wheel), str(elsewhere), str(root), rows(record, PLAIN))
    assert str(caught.value) == (f"'demo/__init__.py': its folder resolves outside "
                                 f"{os.path.realpath(root)}")
    assert not [p for p in elsewhere.rglob("*") if p.is_file()]


def test_no_folder_is_made_through_a_planted_symlink(
        demo: tuple[Path, dict[str, Any], Path, Path], tmp_path: Path) -> None:
    wheel, record, base, root = demo
    outside = tmp_path / "outside"
    outside.mkdir()
    base.mkdir(parents=True)
    (base / "demo").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="its folder resolves outside"):
        splitunpack.write_members(str(wheel), str(base), str(root),
                                  rows(record, ["demo/sub/helper.py"]))
    assert list(outside.iterdir()) == []


def test_missing_names_the_first_member_not_written_as_it_is_in_the_wheel(
        demo: tuple[Path, dict[str, Any], Path, Path]) -> None:
    wheel, record, base, root = demo
    splitunpack.write_members(str(wheel), str(base), str(root), rows(record, PLAIN))
    (base / "demo" / "data.txt").unlink()
    assert splitunpack.missing(str(base), PLAIN, record) == "'demo/data.txt' was not written"
    (base / "demo" / "data.txt").write_bytes(b"half")
    assert splitunpack.missing(str(base), PLAIN, record) == (
        "'demo/data.txt' was not written as it is in the wheel")
    (base / "demo" / "data.txt").unlink()
    # A link whose own size (its target's length) is the member's: not a regular file.
    target = "x" * len(FILES["demo/data.txt"])
    (base / "demo" / "data.txt").symlink_to(target)
    assert os.lstat(base / "demo" / "data.txt").st_size == record["demo/data.txt"].size
    assert splitunpack.missing(str(base), PLAIN, record) == (
        "'demo/data.txt' was not written as it is in the wheel")


def test_rewrite_replaces_what_a_dead_helper_left(
        demo: tuple[Path, dict[str, Any], Path, Path]) -> None:
    wheel, record, base, root = demo
    (base / "demo").mkdir(parents=True)
    (base / "demo" / "data.txt").write_bytes(b"half")  # one half-written, others absent
    splitunpack.rewrite(str(wheel), str(base), str(root), PLAIN, record)
    assert {name: (base / name).read_bytes() for name in PLAIN} == {
        name: FILES[name] for name in PLAIN}


def test_the_helpers_main_says_a_mismatch_in_its_last_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = FILES["demo/data.txt"]
    wheel = demo_wheel(tmp_path / "dist", {"demo/data.txt": data[:-1] + b"!"})
    record = check_wheel(wheel, wheel.name, contents=False).record
    root = tmp_path / "dest"
    job = {"base": str(root / "entry"), "root": str(root),
           "members": [list(row) for row in rows(record, PLAIN)]}
    assert run_helper({"wheel": str(wheel), "stage": None, "limit": 0}, job) == (
        1, splitunpack.LINKED)
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"{splitunpack.MISMATCH}'demo/data.txt' does not match its RECORD hash or size")
    good = demo_wheel(tmp_path / "good")
    job = {**job, "base": str(root / "other")}
    assert run_helper({"wheel": str(good), "stage": None, "limit": 0}, job) == (
        0, splitunpack.LINKED)
    assert splitunpack.missing(str(root / "other"), PLAIN, record) is None


def run_helper(first: dict[str, Any], job: dict[str, Any] | None) -> tuple[int, bytes]:
    """`helper_main` in this process, given its two lines (the second only if `job`)
    through a pipe: its exit code, and what it said on its stdout."""
    import json
    import tempfile

    read, write = os.pipe()
    lines = [first] + ([job] if job is not None else [])
    os.write(write, b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    os.close(write)
    with tempfile.TemporaryFile() as said:
        try:
            code = splitunpack.helper_main(read, said.fileno())
        finally:
            os.close(read)
        said.seek(0)
        return code, said.read()


# ---------------------------------------------------------- the helper process


def ended(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


def test_join_says_why_a_helper_failed_in_its_last_line_of_stderr() -> None:
    assert splitunpack.join(ended("import sys; sys.stderr.write('noise\\n')"), "w.whl") is None
    assert splitunpack.join(ended("import sys; sys.stderr.write('first\\nMemoryError\\n'); "
                                  "sys.exit(3)"), "w.whl") == "MemoryError"
    assert splitunpack.join(ended("import sys; sys.exit(3)"), "w.whl") == "exit status 3"
    assert splitunpack.join(ended("import os; os.kill(os.getpid(), 9)"), "w.whl") == (
        "exit status -9")


def test_join_turns_a_mismatch_into_a_wheel_error() -> None:
    proc = ended(f"import sys; sys.stderr.write({splitunpack.MISMATCH!r} + "
                 "\"'x.py' does not match its RECORD hash or size\\n\"); sys.exit(1)")
    with pytest.raises(WheelError) as caught:
        splitunpack.join(proc, "demo-1.0-py3-none-any.whl")
    assert str(caught.value) == ("demo-1.0-py3-none-any.whl: 'x.py' does not match its "
                                 "RECORD hash or size")


@needs_two_cores
def test_a_helper_started_alone_writes_every_member_it_is_given(
        demo: tuple[Path, dict[str, Any], Path, Path]) -> None:
    """It runs isolated and without site-packages (`-I -S`): the standard library only."""
    wheel, record, base, root = demo
    share = splitunpack.helper_share(record, 1)
    with zipfile.ZipFile(wheel) as archive:
        proc = splitunpack.start(str(wheel), str(base), str(root), share, record, archive)
    assert proc is not None
    assert splitunpack.join(proc, wheel.name) is None
    assert splitunpack.missing(str(base), share, record) is None
    assert {name: (base / name).read_bytes() for name in share} == {
        name: FILES[name] for name in share}


def test_a_helper_that_cannot_start_is_none(
        demo: tuple[Path, dict[str, Any], Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    wheel, record, base, root = demo
    monkeypatch.setattr(splitunpack, "_helper_argv", lambda: [str(root / "no-python")])
    with zipfile.ZipFile(wheel) as archive:
        assert splitunpack.start(str(wheel), str(base), str(root), PLAIN, record,
                                 archive) is None


# ---------------------------------------------------------- a helper started before the download


class StreamingHelper:
    """`helper_main` in a thread of this process, fed through pipes as the worker feeds
    a helper started before its download (`start_streaming`, `send`)."""

    def __init__(self, wheel: Path, size: int, stage: Path) -> None:
        import json
        import threading

        stage.mkdir()
        self._in, self.stdin = os.pipe()
        self.stdout, self._out = os.pipe()
        self.code: int | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        os.write(self.stdin, json.dumps({"wheel": str(wheel), "size": size,
                                         "stage": str(stage), "limit": 1 << 30}).encode()
                 + b"\n")

    def _run(self) -> None:
        self.code = splitunpack.helper_main(self._in, self._out)

    def send(self, base: Path, root: Path, record: dict[str, Any], names: list[str]) -> bytes:
        """The job, as `send` gives it; what the helper said (once it has linked)."""
        import json

        job = {"base": str(base), "root": str(root),
               "members": [list(row) for row in rows(record, names)]}
        os.write(self.stdin, json.dumps(job).encode() + b"\n")
        os.close(self.stdin)
        said = os.read(self.stdout, 100)
        return said

    def join(self) -> int | None:
        self._thread.join(30)
        for fd in (self._in, self.stdout, self._out):
            os.close(fd)
        return self.code


def grow_until(path: Path, data: bytes, end: int) -> None:
    with path.open("ab") as out:
        out.write(data[path.stat().st_size if path.exists() else 0:end])


@pytest.mark.parametrize("hard_links", [True, False])
def test_a_helper_links_what_it_staged_during_the_download_and_writes_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hard_links: bool, any_speed: None) -> None:
    """Where the filesystem has no hard links, the staged members are written again
    from the archive."""
    if not hard_links:
        def refused(*args: object, **kwargs: object) -> None:
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(os, "link", refused)
    wheel = demo_wheel(tmp_path / "dist")
    data = wheel.read_bytes()
    record = check_wheel(wheel, wheel.name, contents=False).record
    download, stage, root = tmp_path / "download.whl", tmp_path / "stage", tmp_path / "dest"
    helper = StreamingHelper(download, len(data), stage)
    grow_until(download, data, central_directory_at(data))  # all but the end
    staged_size = sum(len(data) for data in FILES.values())
    wait_for(lambda: sum(p.stat().st_size for p in stage.iterdir()) == staged_size,
             "the plain members to be staged")
    grow_until(download, data, len(data))
    assert helper.send(root / "entry", root, record, PLAIN) == splitunpack.LINKED
    assert helper.join() == 0
    assert {name: (root / "entry" / name).read_bytes() for name in PLAIN} == FILES
    assert stat.S_IMODE((root / "entry" / "demo/tool.sh").stat().st_mode) == (
        0o755 & ~current_umask())
    assert stat.S_IMODE((root / "entry" / "demo/data.txt").stat().st_mode) & 0o111 == 0
    # Each one linked, not written again (or, without hard links, written again).
    assert len(list(stage.iterdir())) == (0 if hard_links else len(PLAIN))
    assert all((root / "entry" / name).stat().st_nlink == 1 for name in PLAIN)


def test_a_staged_copy_the_archive_does_not_list_is_never_linked(
        tmp_path: Path, any_speed: None) -> None:
    """A local header the central directory does not list (the bytes a reader that
    walks the file sees first): its staged file does not match RECORD, stays staged,
    and the member the archive lists is written instead."""
    entries: list[tuple[str | zipfile.ZipInfo, bytes]] = [("demo/data.txt", b"EVIL\n" * 10)]
    wheel = orphaned(write_zip(tmp_path / "dist" / "demo-1.0-py3-none-any.whl",
                               [*entries, *members(FILES)]), "demo/data.txt")
    data = wheel.read_bytes()
    record = check_wheel(wheel, wheel.name, contents=False).record  # the archive passes
    download, stage, root = tmp_path / "download.whl", tmp_path / "stage", tmp_path / "dest"
    helper = StreamingHelper(download, len(data), stage)
    grow_until(download, data, central_directory_at(data))
    wait_for(lambda: len(list(stage.iterdir())) == len(PLAIN)  # the first copy of each name
             and any(p.read_bytes().startswith(b"EVIL") for p in stage.iterdir()),
             "the copy the archive does not list to be staged")
    grow_until(download, data, len(data))
    assert helper.send(root / "entry", root, record, PLAIN) == splitunpack.LINKED
    assert helper.join() == 0
    assert (root / "entry" / "demo/data.txt").read_bytes() == FILES["demo/data.txt"]
    assert [p.read_bytes() for p in stage.iterdir()] == [b"EVIL\n" * 10]


def test_a_member_linked_before_it_was_staged_whole_is_checked_when_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, any_speed: None) -> None:
    """The word comes while a big member is being staged: it is linked at once (the
    installing process then leaves it alone), finished, and checked against its RECORD
    row: a copy the archive does not list, of the right size, is written again."""
    import time

    from carton_hook.installing import staging

    good, evil = os.urandom(3 << 20), os.urandom(3 << 20)

    def stored(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o100644 << 16
        return info  # stored: what has been staged of it is what has arrived

    files = {"demo/__init__.py": b"", "demo/big.bin": good}
    wheel = orphaned(write_zip(tmp_path / "dist" / "demo-1.0-py3-none-any.whl",
                               [(stored("demo/big.bin"), evil),
                                *[(stored(n) if n == "demo/big.bin" else n, d)
                                  for n, d in members(files)]]), "demo/big.bin")
    data = wheel.read_bytes()
    record = check_wheel(wheel, wheel.name, contents=False).record
    download, stage, root = tmp_path / "download.whl", tmp_path / "stage", tmp_path / "dest"
    # The reader waits for more of the file until the word comes: it is mid-member then.
    monkeypatch.setattr(staging, "POLL", 30.0)
    half = len(evil) // 2
    grow_until(download, data, data.index(evil[:64]) + half)
    helper = StreamingHelper(download, len(data), stage)
    wait_for(lambda: (stage / "0").exists() and (stage / "0").stat().st_size == half,
             "half of the big member to be staged")
    time.sleep(0.2)  # it waits for the rest now
    grow_until(download, data, len(data))
    assert helper.send(root / "entry", root, record, list(files)) == splitunpack.LINKED
    assert helper.join() == 0
    assert (root / "entry" / "demo/big.bin").read_bytes() == good


def test_what_was_staged_of_a_download_started_over_is_linked_only_where_it_matches(
        tmp_path: Path, any_speed: None) -> None:
    """The first try sent other bytes for one member and was cut; the download starts
    over from byte 0 in the same file (fetch.py). What was staged of the first try's
    bytes is linked only where it matches RECORD."""
    good = demo_wheel(tmp_path / "good")
    data = good.read_bytes()
    wrong = FILES["demo/data.txt"].upper()
    first_try = demo_wheel(tmp_path / "bad", {"demo/data.txt": wrong}).read_bytes()
    record = check_wheel(good, good.name, contents=False).record
    download, stage, root = tmp_path / "download.whl", tmp_path / "stage", tmp_path / "dest"
    helper = StreamingHelper(download, len(data), stage)
    grow_until(download, first_try, central_directory_at(first_try))
    wait_for(lambda: sum(p.stat().st_size for p in stage.iterdir())
             == sum(len(data) for data in FILES.values()), "the first try to be staged")
    os.truncate(download, 0)  # started over
    grow_until(download, data, len(data))
    assert helper.send(root / "entry", root, record, PLAIN) == splitunpack.LINKED
    assert helper.join() == 0
    assert {name: (root / "entry" / name).read_bytes() for name in PLAIN} == FILES
    assert [p.read_bytes() for p in stage.iterdir()] == [wrong]
