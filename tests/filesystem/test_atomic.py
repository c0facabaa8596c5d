"""Atomic publishing of the build half's outputs, and what a killed writer leaves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from carton_hook.filesystem import atomic


def _writer(folder: Path) -> subprocess.Popen[str]:
    """A process in the middle of writing `folder/model.carton`, stopped there."""
    code = ("import sys, time; from pathlib import Path\n"
            "from carton_hook.filesystem import atomic\n"
            "with atomic.atomic_writer(Path(sys.argv[1]) / 'model.carton') as f:\n"
            "    f.write(b'x' * 100000); f.flush(); print('writing', flush=True)\n"
            "    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    return proc


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(atomic.TEMP_PREFIX + "*"))


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    proc = _writer(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (leftover,) = _temps(tmp_path)
    _age(leftover, 60)
    atomic.write_bytes(tmp_path / "other.txt", b"new")
    assert _temps(tmp_path) == []
    assert (tmp_path / "other.txt").read_bytes() == b"new"
    assert not (tmp_path / "model.carton").exists()


def test_a_live_writers_file_and_a_fresh_one_are_kept(tmp_path: Path) -> None:
    proc = _writer(tmp_path)
    try:
        (live,) = _temps(tmp_path)
        _age(live, 3600)  # old, but its writer holds it
        fresh = tmp_path / f"{atomic.TEMP_PREFIX}just-made"
        fresh.write_bytes(b"")  # unheld, but younger than any writer takes to lock it
        assert atomic.remove_leftovers(tmp_path) == []
        assert _temps(tmp_path) == sorted([live, fresh])
    finally:
        proc.kill()
        proc.wait()
