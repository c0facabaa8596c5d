"""Install one checked wheel into a folder as `installer` does: purelib and platlib at
the root, `*.dist-info` beside them, scripts in `bin/` with their `#!python` rewritten,
exec bits kept. A wheel of the plain form (most wheels: plainwheel.py) is written here
without importing installer, exactly as installer would write it; every other wheel, and
every wheel unpacked by two processes (splitunpack.py), by installer itself. No `.pyc`
is written here: modules are compiled when first imported (`pycache`) or, on request,
all at once (`bytecode`).

Each member is decompressed once: everything about the wheel is checked before a byte is
written (names, types, sizes, RECORD's rows), and each member's bytes are hashed against
RECORD while they are written (those the installer skips, after it), in the work folder
that is published only when every member matched. A wheel that fails leaves nothing.
"""

from __future__ import annotations

import os
import threading
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from carton_hook.cache.layout import SCHEME_FOLDERS
from carton_hook.errors import WheelError
from carton_hook.formats.recordfile import encode_digest
from carton_hook.formats.wheelcheck import WheelInfo, checked_wheel
from carton_hook.installing import inflate, plainwheel, safewrite, splitunpack

# installer leaves out a wheel's `__pycache__` files (numpy 2.2.6's cp311 wheel has one)
# and warns, with a source line, into the user's terminal; carton checks those members
# against RECORD all the same and compiles its own bytecode: nothing to act on. Said with
# -v instead (below). Set once, here: catching warnings per call is not thread-safe, and
# several wheels install at once.
warnings.filterwarnings("ignore", r"Skip installing .*__pycache__", RuntimeWarning)


# Held while installer's modules are imported (`import_installer`).
_INSTALLER_IMPORTS = threading.Lock()


def import_installer() -> None:
    """Import installer's modules, in one thread at a time: threads that install wheels
    not of the plain form may come to it together (worker._import_for_unpacking says
    why one at a time)."""
    with _INSTALLER_IMPORTS:
        import installer.destinations
        import installer.records
        import installer.sources
        import installer.utils  # noqa: F401


def install_wheel(wheel: Path, filename: str, final: Path, destdir: Path,
                  interpreter: str, split_min: int = splitunpack.SPLIT_MIN_BYTES,
                  between: Callable[[], None] | None = None,
                  streaming: splitunpack.Streaming | None = None) -> None:
    """Install `wheel` as if into `final`, writing below `destdir` (paths embedded in
    scripts name `final`, where the tree is renamed to afterwards). A wheel of
    `split_min` bytes or more, unpacked, is written by two processes (`splitunpack`);
    `streaming` is a helper started before the wheel was downloaded, which staged what
    arrived (`splitunpack.start_streaming`): it becomes the second process, whatever the
    wheel's size. `between` is called before each member is written
    (turns.Turns.hand_over)."""
    # The installer reads the archive that was checked, listed once: its members'
    # contents are checked below, as installed.
    with checked_wheel(wheel, filename, contents=False) as (archive, info):
        _install_checked(wheel, archive, info, final, destdir, interpreter, split_min,
                         between, streaming)


def _install_checked(wheel: Path, archive: zipfile.ZipFile, info: WheelInfo, final: Path,
                     destdir: Path, interpreter: str, split_min: int,
                     between: Callable[[], None] | None,
                     streaming: splitunpack.Streaming | None) -> None:
    filename = info.filename
    shared = splitunpack.helper_share(info.record, 0 if streaming is not None else split_min)
    if streaming is None and not shared:
        # Most wheels: written here without installer, as installer writes them.
        scripts = plainwheel.plain_scripts(info, archive.namelist(), interpreter)
        if scripts is not None:
            try:
                left_out = plainwheel.install_plain(archive, info, scripts, final, destdir,
                                                    interpreter, between)
            except BaseException:
                import shutil

                shutil.rmtree(destdir, ignore_errors=True)  # what was written before
                raise
            _say_left_out(filename, left_out)
            return
    import_installer()
    from installer import install

    base = os.path.join(destdir, os.path.relpath(final, final.anchor))
    helper = None
    if streaming is not None:
        helper = streaming.proc
        splitunpack.send(helper, base, str(destdir), shared, info.record, archive)
        splitunpack.wait_linked(streaming)  # what it staged goes into the tree first
    elif shared:
        helper = splitunpack.start(str(wheel), base, str(destdir), shared, info.record,
                                   archive)
    schemes = {scheme: final / folder for scheme, folder in SCHEME_FOLDERS.items()}
    destination = _safe_destination_class()(
        {k: str(v) for k, v in schemes.items()},
        interpreter=interpreter,
        script_kind="posix",
        bytecode_optimization_levels=(),  # compiled on first import (pycache)
        destdir=str(destdir),
    )
    # Members both processes may write: whoever creates the file first writes it; those
    # the helper had created when this process came to them are its own (`elsewhere`).
    elsewhere: set[str] = set()
    destination.shared, destination.elsewhere = (set(shared) if helper else set()), elsewhere
    if between is not None:
        destination.between = between
    try:
        source = _verifying_source_class()(archive)
        source.expect(filename, info.record, elsewhere)
        install(source, destination, additional_metadata={"INSTALLER": plainwheel.INSTALLER})
        _say_left_out(filename, [p for p in info.record if "__pycache__" in p.split("/")])
        if helper is not None:
            theirs = sorted(elsewhere)
            why = splitunpack.join(helper, filename) or splitunpack.missing(
                base, theirs, info.record)
            helper = None
            if why is not None:  # it died: its members are written here
                from carton_hook.log import logger

                logger().debug("%s: the second unpacking process failed (%s); "
                               "writing its part here", filename, why)
                splitunpack.rewrite(str(wheel), base, str(destdir), theirs, info.record)
        source.all_read()
    except BaseException:
        import shutil

        if helper is not None:  # this process failed first: the helper's work is moot
            splitunpack.stop(helper)
        shutil.rmtree(destdir, ignore_errors=True)  # what was written before the mismatch
        raise


def _say_left_out(filename: str, left_out: list[str]) -> None:
    """Say with -v which members under `__pycache__` were left out."""
    if left_out:
        from carton_hook.log import logger

        logger().debug("%s: %d file(s) in __pycache__ left out, as installer does "
                       "(checked against RECORD; carton compiles its own): %s",
                       filename, len(left_out), ", ".join(left_out[:3]))


class _VerifiedStream:
    """A member's stream that hashes what is read from it and raises `WheelError` when
    its bytes end without matching their RECORD entry. Rewinding (installer reads a
    script's first line twice) starts the hash again."""

    def __init__(self, stream: BinaryIO, entry: Any, where: tuple[str, str],
                 verified: set[str]) -> None:
        self._stream = stream
        self.entry = entry
        self.algorithm: str = entry.hash_.name
        self._where = where
        self._verified = verified
        self._hash = self._fresh()
        self._size = 0

    def _fresh(self) -> Any:
        import hashlib

        return hashlib.new(self.algorithm)

    def read(self, size: int = -1) -> bytes:
        try:
            return self._seen(self._stream.read(size))
        except inflate.ERRORS as exc:
            raise self._damaged(exc) from exc

    def readline(self, size: int = -1) -> bytes:
        try:
            return self._seen(self._stream.readline(size))
        except inflate.ERRORS as exc:
            raise self._damaged(exc) from exc

    def _damaged(self, exc: Exception) -> WheelError:
        return WheelError(self._where[0], f"{self._where[1]!r} cannot be inflated ({exc})")

    def seek(self, offset: int, whence: int = 0) -> int:
        position = self._stream.seek(offset, whence)
        if position != self._size:
            if position != 0:
                raise WheelError(self._where[0], f"{self._where[1]!r} was read out of order")
            self._hash, self._size = self._fresh(), 0
        return position

    def tell(self) -> int:
        return self._size

    def _seen(self, data: bytes) -> bytes:
        self._hash.update(data)
        self._size += len(data)
        if not data or self._size >= self.entry.size:
            digest = encode_digest(self._hash.digest())
            if self._size != self.entry.size or digest != self.entry.hash_.value:
                raise WheelError(self._where[0],
                                 f"{self._where[1]!r} does not match its RECORD hash or size")
            self._verified.add(self._where[1])
        return data


def _verifying_source_class() -> type[Any]:
    """installer's wheel source, each member's stream checked against RECORD as it is
    read (`_VerifiedStream`); `all_read()` then checks those it did not read."""
    from installer.sources import WheelFile

    class VerifyingWheelFile(WheelFile):
        def expect(self, filename: str, record: dict[str, Any],
                   elsewhere: set[str] | None = None) -> None:
            """Check members against `record`; those that end up in `elsewhere` were
            written (and checked) by another process."""
            self._filename = filename
            self._record = record
            self._elsewhere = elsewhere if elsewhere is not None else set()
            self._verified: set[str] = set()

        def get_contents(self) -> Any:
            for elements, stream, is_executable in super().get_contents():
                entry = self._record.get(elements[0])
                stream = inflate.faster(stream, hashed=entry is not None)
                yield elements, stream if entry is None else _VerifiedStream(
                    stream, entry, (self._filename, elements[0]), self._verified), is_executable

        def all_read(self) -> None:
            """Check the members the installer did not read (it skips a `__pycache__`
            member, as numpy 2.2.6's cp310 wheel has), as the pass before would have."""
            for name in sorted(set(self._record) - self._verified - self._elsewhere):
                with inflate.open_member(self._zipfile, name) as stream:
                    if not self._record[name].validate_stream(stream):
                        raise WheelError(self._filename,
                                         f"{name!r} does not match its RECORD hash or size")

    return VerifyingWheelFile


class _FileDescriptor:
    """Writes to an open file descriptor: what installer needs of a file (`write`),
    without the buffer object's `isatty` and `lseek` calls for each of thousands of files."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> int:
        safewrite.write_all(self._fd, data)
        return len(data)


def _safe_destination_class() -> type[Any]:
    """installer's destination, writing each file as pip and uv should (safewrite.py):
    created new, never through a symlink, in a folder that resolves inside the work
    folder."""
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry
    from installer.utils import copyfileobj_with_hashing

    class SafeDestination(SchemeDictionaryDestination):
        # Members a helper process may write too (`splitunpack`), and those it did.
        shared: frozenset[str] | set[str] = frozenset()
        elsewhere: set[str]
        # Called before each member is written (install_wheel's `between`).
        between: Callable[[], None] = staticmethod(lambda: None)

        def write_to_fs(self, scheme: Any, path: str, stream: BinaryIO,
                        is_executable: bool) -> Any:
            self.between()
            writer = self.__dict__.get("_writer")
            if writer is None:
                writer = self._writer = safewrite.SafeWriter(self.destdir)
            target = writer.target(self.scheme_dict[scheme], path)
            try:
                fd = writer.create(target, path, is_executable)
            except FileExistsError:
                if path not in self.shared or not isinstance(stream, _VerifiedStream):
                    raise
                # The helper created it first: it writes it and checks it against the
                # same RECORD row, which is the installed one (checked after it ends).
                self.elsewhere.add(path)
                return RecordEntry(path, stream.entry.hash_, stream.entry.size)
            out = _FileDescriptor(fd)
            try:
                if (isinstance(stream, _VerifiedStream)
                        and stream.algorithm == self.hash_algorithm):
                    # Written as it is in the wheel: its hash is the one RECORD gives,
                    # which the stream checks as it ends. No second hash of the bytes.
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        out.write(chunk)
                    return RecordEntry(path, stream.entry.hash_, stream.entry.size)
                digest, size = copyfileobj_with_hashing(stream, out,  # type: ignore[arg-type]
                                                        self.hash_algorithm)
            finally:
                os.close(fd)
            return RecordEntry(path, Hash(self.hash_algorithm, digest), size)

    return SafeDestination
