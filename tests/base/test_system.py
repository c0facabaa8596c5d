"""carton_hook.system: the one place that knows what differs between operating systems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carton_hook import system


def open_twice(path: Path) -> tuple[int, int]:
    """Two open file descriptions of one file: flock locks one against the other, as
    two processes' would be."""
    path.touch()
    return os.open(path, os.O_RDONLY), os.open(path, os.O_RDONLY)


@pytest.mark.skipif(not system.HAVE_FLOCK, reason="a system with flock")
def test_exclusive_excludes_and_shared_share(tmp_path: Path) -> None:
    one, two = open_twice(tmp_path / "f")
    try:
        assert system.lock(one) is True
        assert system.lock(two, wait=False) is False
        assert system.lock(two, shared=True, wait=False) is False
        os.close(one)  # closing releases it
        one = os.open(tmp_path / "f", os.O_RDONLY)
        assert system.lock(one, shared=True) is True
        assert system.lock(two, shared=True, wait=False) is True
        assert system.lock(one, wait=False) is False  # a shared holder keeps it
    finally:
        os.close(one)
        os.close(two)


@pytest.mark.skipif(not system.HAVE_FLOCK, reason="a system with flock")
def test_a_lock_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import os, sys, time\n"
         "from carton_hook.system import lock\n"
         "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
         "lock(fd)\nprint('held', flush=True)\ntime.sleep(60)\n", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        fd = os.open(path, os.O_RDONLY)
        assert system.lock(fd, wait=False) is False
        holder.kill()
        holder.wait()
        assert system.lock(fd, wait=False) is True
        os.close(fd)
    finally:
        holder.kill()
        holder.wait()


def test_where_there_is_no_flock_no_lock_can_be_had(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "HAVE_FLOCK", False)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        assert system.lock(fd) is None
        assert system.lock(fd, shared=True, wait=False) is None
    finally:
        os.close(fd)


@pytest.mark.skipif(not system.HAVE_FLOCK, reason="a system with flock")
@pytest.mark.parametrize(("raised", "expected"), [
    (BlockingIOError(11, "held"), False), (OSError(37, "No locks available"), None)])
def test_a_filesystem_that_refuses_locks_is_told_apart_from_a_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: OSError,
        expected: bool | None) -> None:
    """Another holder: False, try again later. A filesystem without locks (ENOLCK, as
    some network filesystems answer): None, no lock to be had at all."""
    import fcntl

    def refusing(fd: int, operation: int) -> None:
        raise raised

    monkeypatch.setattr(fcntl, "flock", refusing)
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT)
    try:
        assert system.lock(fd, wait=False) is expected
    finally:
        os.close(fd)


def test_the_prefix_layout_is_a_venvs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert system.prefix_layout(3, 12) == (
        "bin", "lib/python3.12/site-packages", ("python", "python3", "python3.12"))
    monkeypatch.setattr(system, "WINDOWS", True)
    assert system.prefix_layout(3, 12) == ("Scripts", "Lib/site-packages", ("python.exe",))


def test_an_interpreter_is_linked(tmp_path: Path) -> None:
    system.link_interpreter(str(tmp_path / "python"), sys.executable)
    assert os.path.realpath(tmp_path / "python") == os.path.realpath(sys.executable)
    out = subprocess.run([str(tmp_path / "python"), "-c", "print(6 * 7)"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "42\n"


@pytest.mark.parametrize("where", ["bin", "my python/bin", "y" * 130 + "/bin"])
def test_a_script_header_runs_any_interpreter_path(tmp_path: Path, where: str) -> None:
    """A plain `#!` where the kernel reads it whole; through /bin/sh where a space or the
    length would break it. Either way the script runs with that interpreter."""
    python = tmp_path / where / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    header = system.script_header(str(python))
    assert header.startswith("#!/bin/sh\n") is (" " in where or len(str(python)) >= 120)
    script = tmp_path / "script"
    script.write_text(header + "\nimport sys\nprint(sys.executable)\n")
    script.chmod(0o755)
    out = subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout
    assert os.path.realpath(out.strip()) == os.path.realpath(sys.executable)


def test_a_library_is_loaded_by_its_path_or_refused() -> None:
    import ctypes.util

    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no libc to find here")
    system.load_library(libc)
    with pytest.raises(OSError):
        system.load_library("/nonexistent/libnothing.so.1")


def test_the_interpreter_is_the_real_one_behind_a_venv() -> None:
    assert os.path.isfile(system.interpreter())
    assert os.path.realpath(system.interpreter()) == system.interpreter()


def test_read_ready_tells_nothing_yet_from_the_end_of_a_pipe() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)
    try:
        assert system.read_ready(read) is None  # nothing yet: no waiting
        os.write(write, b"going-on\n")
        assert system.read_ready(read) == b"going-on\n"
        os.close(write)
        assert system.read_ready(read) == b""  # its end
    finally:
        os.close(read)
