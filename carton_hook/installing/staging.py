"""Unpack a wheel while it downloads: its members are staged as their bytes arrive.

A wheel's members come one after the other in the file, each behind a local header; its
central directory and RECORD come last. While the download runs (its file grows, in
order), the unpacking helper (`splitunpack`) reads each local header as soon as it has
arrived and writes each plain member of the wheel's root (those the helper may write
anyway) to a numbered file in a private staging folder, hashing it as it goes; a big
member is decompressed as its bytes arrive. So unpacking starts with the first bytes of
the download instead of after the last, on a core that would wait otherwise.

Nothing staged is trusted. Once the download is complete and its sha256 matched the
lock, the installing process checks the wheel as always and sends the helper RECORD's
rows: only a staged file whose sha256 and size are RECORD's for its name is linked into
the installed tree, where it is the file the installing process would have written. A
name that is not the wheel's, a local header that disagrees with the central directory,
bytes that changed under the reader (a download started over): each leaves a staged
file that nothing links, removed with the work folder. The staged names are numbers,
so no member name is ever used as a path before it has been checked.

A download that arrives faster than `FAST` (the loopback, a fast mirror) is over before
staging would win much, and staging it would take the cores from the wheel the model
imports first: none of its members is staged after its first 20 ms. One that arrives
more than `LAG` ahead of the reader has only its big members staged.

The reader stops at the first member it does not stream (its sizes after its bytes, in a
data descriptor; zip64 sizes; encryption; a method other than stored or deflated), at
more output than the archive may unpack to, and once the whole file has arrived (the
member in progress is finished): what is left is unpacked as before, in the wheel's turn
(turns.py), so that a wheel downloaded early does not take the cores from the one the
model imports first. It runs in the helper process: the standard library only, and ISA-L
for inflating where it is installed (`inflate`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

from carton_hook.installing import inflate

# Signature, version, flags, method, time, date, CRC, compressed, uncompressed sizes, name
# and extra field lengths (APPNOTE 4.3.7).
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_SIGNATURE = 0x04034B50
_CHUNK = 1 << 20
# How long a wait for more of the download lasts before the helper looks for its job again.
POLL = 0.005
# Behind the download by more than this, the reader stages only members of `BIG` bytes or
# more (unpacked) and leaves smaller ones for after the download: a big member is what
# the end of an unpack waits for (torch's 434 MB libtorch_cpu.so comes after 3,600 small
# members), and the small ones are shared by two processes afterwards.
LAG = 4 << 20
BIG = 1 << 20
# Arriving faster than this (bytes a second), a download is left alone (the loopback index,
# 120-400 MB/s here: scikit-learn's four big wheels staged while they downloaded made its
# cold run 1.05x slower); a network link is slower.
FAST = 80_000_000


class Staged(NamedTuple):
    path: str
    digest: str  # sha256 in RECORD's form: urlsafe base64, no padding
    size: int


class Current(NamedTuple):
    """The member being staged: its name, staged file and declared size."""

    name: str
    path: str
    size: int


class _Stop(Exception):
    """The reader goes no further."""


class Stager:
    """Stages the members of `wheel` (a file another process appends to, until it has
    `size` bytes) that `wanted` names, in `folder`, at most `limit` bytes in all."""

    def __init__(self, wheel: str, folder: str, limit: int, size: int,
                 wanted: Callable[[str], bool], fast: float | None = None) -> None:
        self.wheel = wheel
        self.folder = folder
        self.limit = limit
        self.size = size
        self.fast = FAST if fast is None else fast
        self._opened = (0.0, 0)  # when the reader found the file, and its size then
        self.wanted = wanted
        self.staged: dict[str, Staged] = {}
        self.current: Current | None = None
        self.drop_current = False  # set by `on_complete`: stop staging it
        self._complete = False
        self._done: Callable[[float], bool] = lambda timeout: True
        self._on_complete: Callable[[], None] = lambda: None

    def run(self, done: Callable[[float], bool], on_complete: Callable[[], None]) -> None:
        """Stage members until the download is complete or the reader stops.
        `done(timeout)` waits up to `timeout` seconds for word that the download is
        complete (True); `on_complete()` is called once, as soon as that word comes,
        even in the middle of a member (which is then finished unless `drop_current`
        was set)."""
        self._done, self._on_complete = done, on_complete
        fd = self._open()
        if fd is None:
            return
        try:
            self._members(fd)
        except (_Stop, OSError, UnicodeDecodeError, struct.error):
            pass  # what is left is unpacked after the download
        except inflate.ERRORS:
            pass  # not raw deflate: checked again, and refused, in the wheel's turn
        finally:
            os.close(fd)
            self.current = None

    def _open(self) -> int | None:
        """The wheel's file once the download has created it (None: it never did)."""
        while True:
            try:
                fd = os.open(self.wheel, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            except FileNotFoundError:
                if self._complete_now(POLL):
                    return None
            else:
                self._opened = (time.monotonic(), os.fstat(fd).st_size)
                return fd

    def _arriving_fast(self, arrived: int) -> bool:
        """Whether the download has been arriving faster than `fast` since the reader
        found it (not judged in its first 20 ms)."""
        seconds = time.monotonic() - self._opened[0]
        return seconds > 0.02 and (arrived - self._opened[1]) / seconds > self.fast

    def _complete_now(self, timeout: float) -> bool:
        """Whether the download is complete, waiting up to `timeout` for the word."""
        if not self._complete and self._done(timeout):
            self._complete = True
            self._on_complete()
        return self._complete

    def _read(self, fd: int, offset: int, size: int, some: bool = False) -> bytes:
        """`size` bytes at `offset`, waiting for them to arrive (with `some`, what has
        arrived of them, at least one byte)."""
        while True:
            os.lseek(fd, offset, os.SEEK_SET)
            data = os.read(fd, size)
            if len(data) == size or (some and data):
                return data
            if self._complete:
                raise _Stop()  # the archive ends here
            self._complete_now(POLL)

    def _members(self, fd: int) -> None:
        offset, index, total = 0, 0, 0
        while not self._complete_now(0):
            if os.fstat(fd).st_size >= self.size:
                return  # downloaded: the rest is unpacked in the wheel's turn (turns.py)
            (signature, _, flags, method, _, _, _, compressed, size, name_length,
             extra_length) = _LOCAL.unpack(self._read(fd, offset, _LOCAL.size))
            if (signature != _SIGNATURE or flags & 0x9 or method not in (0, 8)
                    or 0xFFFFFFFF in (compressed, size)):
                return  # not streamed (encrypted, data descriptor, zip64, another method)
            raw = self._read(fd, offset + _LOCAL.size, name_length)
            name = raw.decode("utf-8" if flags & 0x800 else "cp437")
            start = offset + _LOCAL.size + name_length + extra_length
            offset = start + compressed
            if name.endswith("/") or name in self.staged or not self.wanted(name):
                continue
            arrived = os.fstat(fd).st_size
            if (size < BIG and arrived - offset > LAG) or self._arriving_fast(arrived):
                continue  # behind the download, or it is soon over: left for after it
            total += size
            if total > self.limit:
                return
            path = os.path.join(self.folder, str(index))
            index += 1
            self.current = Current(name, path, size)
            digest = self._stage(fd, start, compressed, size, method, path)
            self.current = None
            self.staged[name] = Staged(path, digest, size)

    def _stage(self, fd: int, start: int, compressed: int, size: int, method: int,
               path: str) -> str:
        """Write one member's bytes to `path` as they arrive; its sha256."""
        hasher = hashlib.sha256()
        inflater = inflate.decompressobj() if method == 8 else None
        written = 0
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                      | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0), 0o644)
        try:
            position, end = start, start + compressed
            while position < end:
                self._complete_now(0)  # the word may come while the bytes are all here
                data = self._read(fd, position, min(_CHUNK, end - position), some=True)
                position += len(data)
                while data:
                    if self.drop_current:
                        raise _Stop()
                    if inflater is None:
                        piece, data = data, b""
                    else:
                        piece = inflater.decompress(data, _CHUNK)  # a bomb stays in bounds
                        data = inflater.unconsumed_tail
                    written += len(piece)
                    if written > size:
                        raise _Stop()  # more than its header says: not streamed
                    hasher.update(piece)
                    view = memoryview(piece)
                    while view:
                        view = view[os.write(out, view):]
            if written != size or (inflater is not None and not inflater.eof):
                raise _Stop()
        finally:
            os.close(out)
        return base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
