"""Where an unpacked wheel's files are written, and how: below a work folder, as if into
their final place (scripts name that place), each created new (`O_EXCL`), never through
a symlink (`O_NOFOLLOW`), in a folder that resolves inside the work folder. Nobody else
writes in that folder, but if something did plant a link there, writing fails instead of
going where the link points (THREATS A4). Used by installer's destination (unpack.py)
and by the plain wheel's installing (plainwheel.py) alike."""

from __future__ import annotations

import os

from carton_hook.errors import WheelError

EXCLUSIVE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class SafeWriter:
    """Creates files below `destdir` (None: in place). Each folder is checked and made
    once, not once per file (a realpath is an lstat per path component)."""

    def __init__(self, destdir: str | None) -> None:
        self.destdir = destdir
        self._checked: set[str] = set()
        self._real_root: str | None = None  # the work folder, resolved once

    def target(self, folder: str, path: str) -> str:
        """Where `path` below `folder` (a scheme's folder) is written: inside `folder`
        (member names were checked before, this is the last word), below `destdir`."""
        folder = os.path.abspath(folder)
        target = os.path.abspath(os.path.join(folder, path))
        # Both are normalized: inside means below the folder's own path.
        if not target.startswith(os.path.join(folder, "")):
            raise WheelError(path, f"it would be written outside {folder}")
        if self.destdir is None:
            return target
        return os.path.join(self.destdir, os.path.splitdrive(target)[1].lstrip(os.sep))

    def create(self, target: str, path: str, executable: bool) -> int:
        """A descriptor of `target` (`path` is named in errors), created new with mode
        0755 or 0644 (less the umask). FileExistsError if it is there already."""
        folder = os.path.dirname(target)
        if folder not in self._checked:
            root = self._real_root
            if root is None:
                root = self._real_root = os.path.realpath(self.destdir or os.sep)
            # Checked before its folders are made (nothing is made through a planted
            # link) and after (a link planted meanwhile).
            for _ in ("before", "after"):
                if not os.path.realpath(folder).startswith(root + os.sep):
                    raise WheelError(path, f"its folder resolves outside {root} (a "
                                           "symlink was planted in the work folder)")
                os.makedirs(folder, exist_ok=True)
            self._checked.add(folder)
        return os.open(target, EXCLUSIVE, 0o755 if executable else 0o644)


def write_all(fd: int, data: bytes) -> None:
    """All of `data` to the descriptor `fd`."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
