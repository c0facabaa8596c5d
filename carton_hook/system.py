"""What differs between operating systems, in one place: file locks, loading a shared
library by path, reading a pipe without waiting, and the layout and launchers of the
venv-like prefix that subprocesses run in.

carton is built and tested on Linux (docs/scope.md). What each function does elsewhere is
said beside it: on macOS and the BSDs the same POSIX calls apply; on Windows there is no
`flock`, so every lock here is "cannot be had" (the cache's per-wheel lock then uses
filelock, cache/entries.py), and the prefix takes a venv's Windows layout.
"""

from __future__ import annotations

import os
import sys

WINDOWS = os.name == "nt"
# Descriptors a child process must not inherit (lock files among them); Windows has no
# such flag (its descriptors are not inherited by default).
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# POSIX has flock(2) (fcntl is imported when a lock is first taken: at import time it
# would cost every warm start the lookup of lib-dynload, ~0.8 ms here).
HAVE_FLOCK = os.name == "posix"


def read_ready(fd: int) -> bytes | None:
    """What the non-blocking pipe `fd` holds now: None if nothing yet, b"" at its end (or
    when it cannot be read any more). The pipe's reader and writer are this process and
    its worker: both set up on POSIX (`os.set_blocking`), where `select` waits for it."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def lock(fd: int, *, shared: bool = False, wait: bool = True) -> bool | None:
    """Take the `flock` of the open file `fd`: exclusive, or `shared`; waiting for it, or
    not (`wait=False`). True when taken, False when another holder keeps it (without
    `wait` only), None where it cannot be had at all: no `flock` here (Windows), or a
    filesystem that refuses locks. Released when `fd` is closed, and when the process
    dies."""
    if not HAVE_FLOCK:
        return None
    import fcntl

    operation = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    if not wait:
        operation |= fcntl.LOCK_NB
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def load_library(path: str) -> None:
    """Load the shared library at `path` into this process, so that extensions linking
    to it by its SONAME find it loaded (ELF: Linux). With the default RTLD_LOCAL: no
    symbol goes into the global scope that a pip install would not put there. Raises
    OSError where it cannot be loaded."""
    import ctypes

    ctypes.CDLL(path)


def prefix_layout(major: int, minor: int) -> tuple[str, str, tuple[str, ...]]:
    """A venv's layout: its scripts folder, its site-packages folder (both relative to
    the prefix) and the names its interpreter goes by there."""
    if WINDOWS:
        return "Scripts", "Lib/site-packages", ("python.exe",)
    return ("bin", f"lib/python{major}.{minor}/site-packages",
            ("python", f"python{major}", f"python{major}.{minor}"))


def link_interpreter(link: str, interpreter: str) -> None:
    """Make `link` start `interpreter`: a symbolic link (a copy where links cannot be
    made, as venv does on Windows)."""
    try:
        os.symlink(interpreter, link)
    except OSError:
        if not WINDOWS:
            raise
        import shutil

        shutil.copy2(interpreter, link)


def script_header(python: str) -> str:
    """The first line(s) of a script run by `python`. A kernel splits a `#!` line at the
    first space and truncates it at 127 bytes or so; such a path goes through /bin/sh,
    as pip's scripts do, in lines that Python reads as a string and skips. (Windows
    runs scripts through launchers, which carton does not write.)"""
    if " " not in python and len(python.encode()) < 120:
        return f"#!{python}"
    import shlex

    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''"


def interpreter() -> str:
    """The real interpreter behind `sys.executable` (a venv's base Python)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
