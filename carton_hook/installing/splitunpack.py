"""Unpack one big wheel on two cores: a second process writes part of its members.

Decompressing, hashing and writing a member is Python and zlib under one GIL, so a
wheel such as torch's (12,000 members, 700 MB unpacked) unpacks on one core however many
threads there are. For a wheel of `SPLIT_MIN_BYTES` or more (unpacked), `install_wheel`
starts a helper process that writes the plain members of the wheel's root (no
`.dist-info`, `.data` or `__pycache__` member, nothing the installer rewrites), biggest
first, while the installing process goes through the wheel in order: a member is
written by whichever creates its file first (`O_EXCL`), so the work is shared however
it is spread. The installed tree and its RECORD are the ones one process writes: each of
the helper's members is written unchanged, and its RECORD row is the wheel's.

The helper checks each member against its RECORD hash and size as it writes it, as the
installing process does, and writes the same way (new files only, never through a
symlink, in folders that resolve inside the work folder). It imports nothing but the
standard library and the inflater the installing process uses (`inflate`). A mismatch
fails the install; a helper that dies for another reason (killed, out of memory) leaves
its members to the installing process.

For a wheel of `STREAM_MIN_BYTES` or more (downloaded), the worker starts the helper
before the download instead (`start_streaming`): until the download is complete, it
stages the members whose bytes have arrived (`staging`); then, in the wheel's turn,
told RECORD's rows (`send`), it links those that match them into the tree, says so on
its stdout (the installing process waits for that line, so that it does not write them
again), and goes on as above.

The helper's stdin carries two JSON lines: the wheel (its file and size, the staging
folder or none, the most bytes it may stage), then, once the wheel is complete and checked, the
job (where to write, and the rows of the members it may write).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    import zipfile
    from typing import Any

    from carton_hook.installing.staging import Stager

# numpy (57 MB unpacked) and pandas (44 MB) each on two cores: a first run of both went
# from one core idle for two seconds, waiting for the slower wheel, to none idle.
SPLIT_MIN_BYTES = 24_000_000
# A download of this many bytes or more is unpacked as it arrives: over a 50 MB/s link,
# torch's 190 MB take 3.8 s to arrive, which its unpacking no longer waits for.
STREAM_MIN_BYTES = 8_000_000
# A helper that failed a check prints this line last; anything else is a crash.
MISMATCH = "carton-mismatch: "
# What the helper says on its stdout once the staged members are in the tree.
LINKED = b"linked\n"

# The folder that holds carton_hook (this file is carton_hook/<room>/<module>.py).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# argv[1]: this package's folder, then the folder of the inflater this process uses, if
# any (`inflate`); the job, as JSON, on stdin.
_HELPER = """\
import sys
sys.path[0:0] = sys.argv[1:]
from carton_hook.installing.splitunpack import helper_main
sys.exit(helper_main())
"""


def helper_share(record: dict[str, Any], split_min: int = SPLIT_MIN_BYTES) -> list[str]:
    """The members of a wheel (`record`: name -> RECORD entry) that a helper process may
    write, biggest first: none when the wheel is smaller than `split_min` unpacked, or on
    one core. The installing process goes through them in the wheel's order, the helper
    biggest first; whoever creates a member's file first writes it, so the two share
    the work however long each member takes (a file of `libtorch_cpu.so`'s 434 MB, or
    thousands of headers in new folders), and neither waits for the other."""
    total = sum(int(entry.size or 0) for entry in record.values())
    if total < split_min or (os.cpu_count() or 1) < 2:
        return []
    shareable = [(int(entry.size or 0), name) for name, entry in record.items()
                 if _shareable(name) and entry.hash_.name == "sha256"]  # the installed RECORD's
    return [name for _, name in sorted(shareable, reverse=True)]


def _shareable(name: str) -> bool:
    parts = name.split("/")
    return not parts[0].endswith((".dist-info", ".data")) and "__pycache__" not in parts[:-1]


def streams(size: int) -> bool:
    """Whether a download of `size` bytes is unpacked as it arrives (`start_streaming`)."""
    return size >= STREAM_MIN_BYTES and (os.cpu_count() or 1) >= 2 and os.name == "posix"


class Streaming(NamedTuple):
    """A helper started before its wheel's download, and its staging folder."""

    proc: subprocess.Popen[bytes]
    stage: str


def start_streaming(wheel: str, size: int, stage: str, limit: int) -> Streaming | None:
    """Start a helper that stages the members of `wheel`, a file being downloaded (to
    `size` bytes), in the folder `stage`, at most `limit` bytes; None if it cannot
    start. `send` gives it its job once the wheel is complete and checked."""
    proc = _start({"wheel": wheel, "size": size, "stage": stage, "limit": limit})
    return None if proc is None else Streaming(proc, stage)


def start(wheel: str, base: str, root: str, members: list[str], record: dict[str, Any],
          archive: zipfile.ZipFile) -> subprocess.Popen[bytes] | None:
    """Start a helper that writes `members` of `wheel` below `base` (the entry's folder
    in the work folder `root`); None if it cannot start (the caller writes them).
    `archive` is the wheel, open: it tells which members are executable."""
    proc = _start({"wheel": wheel, "stage": None, "limit": 0})
    if proc is not None:
        send(proc, base, root, members, record, archive)
    return proc


def _start(first: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    import json
    import subprocess

    try:
        proc = subprocess.Popen(_helper_argv(), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError:
        return None
    _write(proc, json.dumps(first).encode() + b"\n")
    return proc


def send(proc: subprocess.Popen[bytes], base: str, root: str, members: list[str],
         record: dict[str, Any], archive: zipfile.ZipFile) -> None:
    """Give the helper its job: write `members` below `base` (see `start`)."""
    import json

    rows = [[name, record[name].hash_.name, record[name].hash_.value, record[name].size,
             executable_member(archive.getinfo(name))] for name in members]
    _write(proc, json.dumps({"base": base, "root": root, "members": rows}).encode() + b"\n")
    assert proc.stdin is not None
    with contextlib.suppress(OSError):
        proc.stdin.close()


def _write(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        proc.stdin.flush()
    except OSError:
        pass  # it died at once: `join` says so


def wait_linked(streaming: Streaming) -> None:
    """Wait until the helper has linked what it staged into the tree (or ended), if it
    staged anything: this process would write it again. (Not for correctness: a member
    is written by whoever creates its file first, and the helper links only what
    matched RECORD.)"""
    assert streaming.proc.stdout is not None
    if os.listdir(streaming.stage):
        streaming.proc.stdout.readline()


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End a helper whose work is moot (the download or the install failed)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _helper_argv() -> list[str]:
    from carton_hook.installing.inflate import engine_folder

    folder = engine_folder()
    return [sys.executable, "-I", "-S", "-c", _HELPER, _PACKAGE_PARENT,
            *([folder] if folder and folder != _PACKAGE_PARENT else [])]


def join(proc: subprocess.Popen[bytes], wheel_name: str) -> str | None:
    """Wait for the helper. Raises `WheelError` if a member did not match its RECORD;
    returns why it failed otherwise (None: it wrote every member)."""
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    if proc.returncode == 0:
        return None
    last = err.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
    if last[0].startswith(MISMATCH):
        from carton_hook.errors import WheelError

        raise WheelError(wheel_name, last[0][len(MISMATCH):])
    return last[0]


def missing(base: str, members: list[str], record: dict[str, Any]) -> str | None:
    """What a helper that said it succeeded did not write (None: each member is there,
    a regular file of its RECORD size)."""
    import stat

    for name in members:
        try:
            st = os.lstat(os.path.join(base, name))
        except OSError:
            return f"{name!r} was not written"
        if not stat.S_ISREG(st.st_mode) or st.st_size != record[name].size:
            return f"{name!r} was not written as it is in the wheel"
    return None


def rewrite(wheel: str, base: str, root: str, members: list[str],
            record: dict[str, Any]) -> None:
    """Write `members` in this process, after a helper that died: what it left of them
    goes first."""
    for name in members:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(base, name))
    write_members(wheel, base, root, [(name, record[name].hash_.name,
                                       record[name].hash_.value, record[name].size)
                                      for name in members])


def helper_main(fd: int = 0, out: int = 1) -> int:
    """The helper process, its two lines read from `fd`, its word written to `out`:
    stage what arrives if asked to, then link what matched and write the job's members
    that the installing process has not created yet; 0 when every one it wrote or linked
    matched."""
    lines = _Lines(fd)
    first = lines.take()
    if first is None:
        return 0
    taking = _Taking(lines, out)
    stager = None
    try:
        if first["stage"]:
            from carton_hook.installing.staging import Stager

            stager = Stager(first["wheel"], first["stage"], int(first["limit"]),
                            int(first["size"]), _shareable)
            stager.run(lines.poll, lambda: taking.take(stager))
            taking.raise_error()
        if taking.job is None:  # it stopped early, or nothing was staged
            taking.take(stager)
            taking.raise_error()
        job = taking.job or {}
        early_kept = False
        if job.get("members") and taking.early is not None and stager is not None:
            early_kept = _check_early(first["wheel"], job, taking.early, stager)
        if stager is not None and os.environ.get("CARTON_TRACE"):
            from carton_hook.trace import mark

            mark(f"{os.path.basename(first['wheel'])}: {len(stager.staged)} members "
                 f"staged as it arrived, {len(taking.linked) + early_kept} linked")
        if not job.get("members"):
            return 0
        rest = [tuple(row) for row in job["members"]
                if row[0] not in taking.linked and row[0] != taking.early]
        write_members(first["wheel"], job["base"], job["root"], rest, claim=True)
    except ValueError as exc:  # a member that does not match its RECORD row
        print(f"{MISMATCH}{exc}", file=sys.stderr)
        return 1
    return 0


class _Lines:
    """JSON lines from a pipe, read as they come: one may be waited for with a timeout
    while the helper stages (`poll`)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._ended = False

    def poll(self, timeout: float | None) -> bool:
        """Whether a line (or the pipe's end) is there, waiting up to `timeout` s."""
        import select

        while b"\n" not in self._buffer and not self._ended:
            if timeout is not None and not select.select([self._fd], [], [], timeout)[0]:
                return False
            data = os.read(self._fd, 1 << 16)
            self._ended = not data
            self._buffer += data
        return True

    def take(self) -> Any:
        """The next line's value; None when the pipe ended first."""
        import json

        self.poll(None)
        if b"\n" not in self._buffer:
            return None
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)


class _Taking:
    """The job, once it came, and what was staged of it: linked into the tree, and the
    member still being staged then (`early`), linked before its end."""

    def __init__(self, lines: _Lines, out: int) -> None:
        self._lines = lines
        self._out = out
        self.job: dict[str, Any] | None = None
        self.linked: set[str] = set()
        self.early: str | None = None
        self._error: BaseException | None = None

    def take(self, stager: Stager | None) -> None:
        """Read the job, link what matched, and say so (the installing process waits
        for it). Called by the stager, maybe in the middle of a member: an error is
        kept for `raise_error`, not raised into the stager."""
        try:
            self.job = self._lines.take() or {}
            if stager is not None and self.job.get("members"):
                self._link_staged(stager)
        except BaseException as exc:  # noqa: BLE001 - raised again by raise_error
            self._error = exc
            if stager is not None:
                stager.drop_current = True
        finally:
            with contextlib.suppress(OSError):
                os.write(self._out, LINKED)

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _link_staged(self, stager: Stager) -> None:
        job = self.job or {}
        rows = {row[0]: row for row in job["members"]}
        real_root = os.path.realpath(job["root"])
        checked: set[str] = set()
        for name, staged in stager.staged.items():
            row = rows.get(name)
            if (row is not None and tuple(row[1:4]) == ("sha256", staged.digest, staged.size)
                    and _link(staged.path, job["base"], name, real_root, row[4], checked)):
                self.linked.add(name)
        current = stager.current
        if current is None:
            return
        row = rows.get(current.name)
        # Linked now, finished after: the installing process leaves it to this one.
        if (row is not None and row[1] == "sha256" and row[3] == current.size
                and _link(current.path, job["base"], current.name, real_root, row[4],
                          checked)):
            self.early = current.name
        else:
            stager.drop_current = True


def _link(staged: str, base: str, name: str, real_root: str, executable: bool,
          checked: set[str]) -> bool:
    """Put the staged file at `name` below `base` (a hard link: the same file); False if
    the installing process created that file first, or the filesystem has no hard links
    (then it is written as any other)."""
    target = os.path.join(base, name)
    _make_folder(os.path.dirname(target), name, real_root, checked)
    if executable:  # executable by whoever may read it: 0o755 under umask 022, as written
        mode = os.stat(staged).st_mode & 0o777
        os.chmod(staged, mode | (mode & 0o444) >> 2)
    try:
        os.link(staged, target)
    except OSError:  # FileExistsError: the installing process's
        return False
    os.unlink(staged)  # one name for the file, the tree's
    return True


def _check_early(wheel: str, job: dict[str, Any], name: str, stager: Stager) -> bool:
    """The member linked while it was being staged (the download ended meanwhile): if
    it did not end as its RECORD row says (its local header lied, or the reader
    stopped), it is written again here (False)."""
    row = next(row for row in job["members"] if row[0] == name)
    staged = stager.staged.get(name)
    if staged is not None and (staged.digest, staged.size) == (row[2], row[3]):
        return True
    os.unlink(os.path.join(job["base"], name))
    write_members(wheel, job["base"], job["root"], [tuple(row)])
    return False


def write_members(wheel: str, base: str, root: str,
                  members: list[tuple[Any, ...]], claim: bool = False) -> None:
    """Write each member `(name, algorithm, urlsafe-b64 digest, size[, executable])` of
    `wheel` to `base/name`: new files only, no symlink followed, folders inside `root`,
    exec bits as the wheel says; raises `ValueError` when a member does not match its
    hash or size (what was written stays for the caller's work folder to be removed).
    With `claim`, a member whose file exists already is the installing process's, and
    skipped."""
    import base64
    import hashlib
    import zipfile

    from carton_hook.installing.inflate import ERRORS, copy_member

    real_root = os.path.realpath(root)
    checked: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with zipfile.ZipFile(wheel) as archive:
        for name, algorithm, digest, size, *_ in members:
            info = archive.getinfo(name)
            target = os.path.join(base, name)
            _make_folder(os.path.dirname(target), name, real_root, checked)
            executable = executable_member(info)
            hasher = hashlib.new(algorithm)
            try:
                fd = os.open(target, flags, 0o755 if executable else 0o644)
            except FileExistsError:
                if claim:
                    continue  # the installing process got to it first
                raise
            try:
                written = copy_member(archive, info, fd, hasher)
            except ERRORS as exc:
                raise ValueError(f"{name!r} cannot be inflated ({exc})") from exc
            finally:
                os.close(fd)
            got = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
            if written != size or got != digest:
                raise ValueError(f"{name!r} does not match its RECORD hash or size")


def _make_folder(folder: str, name: str, real_root: str, checked: set[str]) -> None:
    """Make `folder` (for member `name`), which must resolve inside `real_root`:
    checked before its folders are made (nothing is made through a planted link) and
    after (a link planted meanwhile); once per folder (`checked`)."""
    if folder in checked:
        return
    for _ in ("before", "after"):
        if not os.path.realpath(folder).startswith(real_root + os.sep):
            raise ValueError(f"{name!r}: its folder resolves outside {real_root}")
        os.makedirs(folder, exist_ok=True)
    checked.add(folder)


def executable_member(info: zipfile.ZipInfo) -> bool:
    """Whether the member `info` is written executable: a regular file with an exec bit,
    as installer (and pip) read a member's mode."""
    import stat

    mode = info.external_attr >> 16
    return bool(mode and stat.S_ISREG(mode) and mode & 0o111)
