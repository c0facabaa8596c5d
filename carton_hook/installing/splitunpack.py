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
standard library. A mismatch fails the install; a helper that dies for another reason
(killed, out of memory) leaves its members to the installing process.
"""

from __future__ import annotations

import contextlib
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

# numpy (57 MB unpacked) and pandas (44 MB) each on two cores: a first run of both went
# from one core idle for two seconds, waiting for the slower wheel, to none idle.
SPLIT_MIN_BYTES = 24_000_000
# A helper that failed a check prints this line last; anything else is a crash.
MISMATCH = "carton-mismatch: "

# The folder that holds carton_hook (this file is carton_hook/<room>/<module>.py).
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# argv[1]: this package's folder; the job, as JSON, on stdin.
_HELPER = """\
import json, sys
sys.path.insert(0, sys.argv[1])
from carton_hook.installing.splitunpack import helper_main
sys.exit(helper_main(json.load(sys.stdin)))
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


def start(wheel: str, base: str, root: str, members: list[str],
          record: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    """Start a helper that writes `members` of `wheel` below `base` (the entry's folder
    in the work folder `root`); None if it cannot start (the caller writes them)."""
    import json
    import subprocess

    job = {"wheel": wheel, "base": base, "root": root,
           "members": [[name, record[name].hash_.name, record[name].hash_.value,
                        record[name].size] for name in members]}
    try:
        proc = subprocess.Popen(_helper_argv(), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError:
        return None
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
    except OSError:
        pass  # it died at once: `join` says so
    return proc


def _helper_argv() -> list[str]:
    return [sys.executable, "-I", "-S", "-c", _HELPER, _PACKAGE_PARENT]


def join(proc: subprocess.Popen[bytes], wheel_name: str) -> str | None:
    """Wait for the helper. Raises `WheelError` if a member did not match its RECORD;
    returns why it failed otherwise (None: it wrote every member)."""
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    proc.wait()
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


def helper_main(job: dict[str, Any]) -> int:
    """The helper process: write the job's members that the installing process has not
    created yet; 0 when every one it wrote matched."""
    try:
        write_members(job["wheel"], job["base"], job["root"],
                      [tuple(member) for member in job["members"]], claim=True)
    except ValueError as exc:  # a member that does not match its RECORD row
        print(f"{MISMATCH}{exc}", file=sys.stderr)
        return 1
    return 0


def write_members(wheel: str, base: str, root: str,
                  members: list[tuple[Any, ...]], claim: bool = False) -> None:
    """Write each member `(name, algorithm, urlsafe-b64 digest, size)` of `wheel` to
    `base/name`: new files only, no symlink followed, folders inside `root`, exec bits
    kept; raises `ValueError` when a member does not match its hash or size (what was
    written stays for the caller's work folder to be removed). With `claim`, a member
    whose file exists already is the installing process's, and skipped."""
    import base64
    import hashlib
    import stat
    import zipfile

    real_root = os.path.realpath(root)
    checked: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with zipfile.ZipFile(wheel) as archive:
        for name, algorithm, digest, size in members:
            info = archive.getinfo(name)
            target = os.path.join(base, name)
            folder = os.path.dirname(target)
            if folder not in checked:
                # Checked before its folders are made (nothing is made through a planted
                # link) and after (a link planted meanwhile).
                for _ in ("before", "after"):
                    if not os.path.realpath(folder).startswith(real_root + os.sep):
                        raise ValueError(f"{name!r}: its folder resolves outside {real_root}")
                    os.makedirs(folder, exist_ok=True)
                checked.add(folder)
            mode = info.external_attr >> 16
            executable = bool(mode and stat.S_ISREG(mode) and mode & 0o111)
            hasher = hashlib.new(algorithm)
            written = 0
            try:
                fd = os.open(target, flags, 0o755 if executable else 0o644)
            except FileExistsError:
                if claim:
                    continue  # the installing process got to it first
                raise
            try:
                with archive.open(info) as stream:
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        hasher.update(chunk)
                        written += len(chunk)
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            got = base64.urlsafe_b64encode(hasher.digest()).rstrip(b"=").decode()
            if written != size or got != digest:
                raise ValueError(f"{name!r} does not match its RECORD hash or size")
