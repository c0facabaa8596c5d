"""Inflate a wheel's members with ISA-L (`isal`) where it is installed, zlib otherwise.

Inflating is half of what unpacking a wheel costs in carton's processes (scipy's 114 MB:
0.37 of 0.73 s of one core), and a first run of a big model is bound by its two cores
from its first unpacking to its end. ISA-L's inflate gives the same bytes at about twice
zlib's speed here (docs/performance.md); it is used only in carton's own installing
processes, never in the model's. Where `isal` is not installed (a platform it has no
wheel for, or an executable carton's own runtime, which carries pure Python only), zlib
does the same work.

Nothing is trusted more for it: a wheel's file matched its sha256 before any member is
inflated, and every member's inflated bytes are hashed against its RECORD row as they
are written; an inflater that gave other bytes would fail that check.
"""

from __future__ import annotations

import os
import zlib
from typing import IO, TYPE_CHECKING, Any, TypeVar

from carton_hook.installing.safewrite import write_all

if TYPE_CHECKING:  # zipfile is imported by whoever opens a member; the staging helper does not
    import zipfile

_Stream = TypeVar("_Stream")


def _load() -> Any:
    try:
        from isal import isal_zlib
    except ImportError:  # no wheel of it here: zlib's inflate, the same bytes
        return None
    return isal_zlib


_isal = _load()
# What an inflater raises on data that is not raw deflate.
ERRORS: tuple[type[Exception], ...] = (zlib.error,) if _isal is None else (
    zlib.error, _isal.error)


def engine() -> str:
    """The inflater in use: "isal" or "zlib"."""
    return "zlib" if _isal is None else "isal"


def engine_folder() -> str | None:
    """The folder to put on a helper process's `sys.path` for it to inflate as this one
    does (the one that holds the `isal` package); None if zlib is used."""
    if _isal is None:
        return None
    import isal

    return os.path.dirname(os.path.dirname(os.path.abspath(isal.__file__)))


def decompressobj() -> Any:
    """An inflater of raw deflate data (a zip member's), as `zlib.decompressobj(-15)`."""
    return zlib.decompressobj(-15) if _isal is None else _isal.decompressobj(-15)


def open_member(archive: zipfile.ZipFile, member: str | zipfile.ZipInfo) -> IO[bytes]:
    """`archive.open(member)` for a member whose bytes the caller hashes against its
    RECORD row (`faster`)."""
    return faster(archive.open(member), hashed=True)


def copy_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, fd: int,
                hasher: Any) -> int:
    """Inflate `member` into the open file `fd` as its bytes come, each fed to `hasher`
    (the caller checks the digest against the member's RECORD row); the bytes written.
    Raises one of ERRORS where the member's data is not deflate."""
    size = 0
    with open_member(archive, member) as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            hasher.update(chunk)
            size += len(chunk)
            write_all(fd, chunk)
    return size


def faster(stream: _Stream, hashed: bool) -> _Stream:
    """A member's stream that `ZipFile.open` just returned (it checked the member's local
    header), nothing read from it yet, inflating with ISA-L where it is installed. If
    the caller checks its bytes against their RECORD sha256 (`hashed`), zipfile's CRC-32
    of them is not computed: the sha256 is the stronger check of the same bytes (5% of
    an unpacking's time once inflating is ISA-L's). zipfile keeps both in the stream's
    `_decompressor` and `_expected_crc` (3.10 to 3.13); where that is not so, the stream
    is left as it is (a test tells)."""
    import zipfile  # the caller's, already imported

    fresh = not getattr(stream, "_readbuffer", b"") and getattr(stream, "_offset", 0) == 0
    if (fresh and _isal is not None
            and getattr(stream, "_compress_type", None) == zipfile.ZIP_DEFLATED
            and getattr(stream, "_decompressor", None) is not None):
        stream._decompressor = _isal.decompressobj(-15)  # type: ignore[attr-defined]
    if fresh and hashed and getattr(stream, "_expected_crc", None) is not None:
        stream._expected_crc = None  # type: ignore[attr-defined]
    return stream
