"""Entries in use: a shared flock on the marker while a process uses an entry, an
exclusive one to take it out, and a last-use stamp at most once an hour."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from carton_hook.cache import inuse
from carton_hook.cache.layout import COMPLETE


@pytest.fixture(autouse=True)
def fresh_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inuse, "_held", {})


def entry(tmp_path: Path, name: str = "e") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / COMPLETE).write_text("{}")
    return folder


HOLDER = """
import sys
from carton_hook.cache.inuse import hold
assert hold(sys.argv[1])
print("held", flush=True)
sys.stdin.read()
"""


def test_an_entry_another_process_holds_cannot_be_taken(tmp_path: Path) -> None:
    folder = entry(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == "held\n"
        assert inuse.take(str(folder)) is None
    finally:
        holder.stdin.close()
        holder.wait()
    fd = inuse.take(str(folder))  # its lock died with it
    assert fd is not None
    os.close(fd)


def test_this_process_holds_what_it_uses(tmp_path: Path) -> None:
    folder = entry(tmp_path)
    assert inuse.hold(str(folder)) is True
    assert inuse.hold(str(folder)) is True  # once is enough
    assert inuse.take(str(folder)) is None


def test_an_entry_taken_out_meanwhile_is_not_held(tmp_path: Path) -> None:
    folder = entry(tmp_path)
    fd = inuse.take(str(folder))
    assert fd is not None
    os.rename(folder, tmp_path / "aside")
    os.close(fd)
    assert inuse.hold(str(folder)) is False
    entry(tmp_path)  # published again: a new marker at the same path
    assert inuse.hold(str(folder)) is True
    assert not inuse.hold(str(tmp_path / "never"))


def test_last_use_is_stamped_at_most_once_an_hour(tmp_path: Path) -> None:
    old, recent = entry(tmp_path, "old"), entry(tmp_path, "recent")
    two_hours_ago = time.time() - 7200
    os.utime(old / COMPLETE, (two_hours_ago, two_hours_ago))
    ten_minutes_ago = time.time() - 600
    os.utime(recent / COMPLETE, (ten_minutes_ago, ten_minutes_ago))
    inuse.hold(str(old))
    inuse.hold(str(recent))
    assert inuse.last_used(str(old)) > time.time() - 60
    assert inuse.last_used(str(recent)) == pytest.approx(ten_minutes_ago, abs=1)
