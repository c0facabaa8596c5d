"""SafeWriter: files created below a work folder as if in their final place, never over
a file, never through a link, never outside the scheme's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carton_hook.errors import WheelError
from carton_hook.installing.safewrite import SafeWriter, write_all


def test_a_file_is_written_below_the_work_folder_as_if_in_place(tmp_path: Path) -> None:
    writer = SafeWriter(str(tmp_path / "dest"))
    final = "/cache/entry"
    target = writer.target(final, "pkg/mod.py")
    assert target == str(tmp_path / "dest" / "cache" / "entry" / "pkg" / "mod.py")
    fd = writer.create(target, "pkg/mod.py", executable=False)
    write_all(fd, b"X = 1\n" * 10_000)
    os.close(fd)
    assert Path(target).read_bytes() == b"X = 1\n" * 10_000
    with pytest.raises(FileExistsError):
        writer.create(target, "pkg/mod.py", executable=False)


def test_a_path_that_leaves_its_folder_is_refused(tmp_path: Path) -> None:
    writer = SafeWriter(str(tmp_path / "dest"))
    with pytest.raises(WheelError, match="outside"):
        writer.target("/cache/entry", "../elsewhere/mod.py")


def test_a_folder_that_resolves_outside_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "cache").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "cache" / "entry").symlink_to(outside, target_is_directory=True)
    writer = SafeWriter(str(dest))
    target = writer.target("/cache/entry", "mod.py")
    with pytest.raises(WheelError, match="resolves outside"):
        writer.create(target, "mod.py", executable=False)
    assert list(outside.iterdir()) == []


def test_modes_are_0755_or_0644_less_the_umask(tmp_path: Path) -> None:
    writer = SafeWriter(str(tmp_path))
    old = os.umask(0o022)
    try:
        for name, executable, mode in (("a", True, 0o755), ("b", False, 0o644)):
            target = writer.target("/x", name)
            os.close(writer.create(target, name, executable))
            assert os.stat(target).st_mode & 0o777 == mode
    finally:
        os.umask(old)
