"""The content-addressed cache: one fill per sha256, published atomically with a marker
(THREATS C1-C4 and the publishing recipe)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.cache import entries as cache
from carton_hook.cache.entries import ensure, is_complete, remove
from carton_hook.cache.layout import COMPLETE
from carton_hook.errors import CacheError

SHA = "ab" * 32
OTHER = "cd" * 32
ROOT_DIR = Path(__file__).resolve().parents[2]


def make_fill(calls: list[Path] | None = None, *, delay: float = 0.0,
              content: str = "hello") -> Callable[[Path, Path], None]:
    """A fill that installs a tiny tree (a package and a file in a subfolder)."""
    lock = threading.Lock()

    def fill(work: Path, tree: Path) -> None:
        with lock:
            if calls is not None:
                calls.append(work)
        assert work.parent.name == ".tmp"
        assert tree.parent == work and not tree.exists()
        time.sleep(delay)
        (tree / "pkg").mkdir(parents=True)
        (tree / "pkg" / "__init__.py").write_text(content)
        (tree / "data.txt").write_text(content)
    return fill


def marker(entry: Path) -> object:
    return json.loads((entry / COMPLETE).read_text())


def tmp_children(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".tmp").iterdir())


# ---------------------------------------------------------------- the normal path


def test_ensure_fills_once_and_returns_the_entry(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    calls: list[Path] = []
    entry = ensure(root, SHA, make_fill(calls))
    assert entry == root / SHA
    assert len(calls) == 1
    assert (entry / "pkg" / "__init__.py").read_text() == "hello"
    assert (entry / "data.txt").read_text() == "hello"
    assert sorted(p.name for p in entry.iterdir()) == [COMPLETE, "data.txt", "pkg"]
    assert marker(entry) == {"format": 1, "sha256": SHA}
    assert is_complete(entry, SHA)
    # The work folder is gone; only the lock file is left (never deleted).
    assert tmp_children(root) == []
    assert sorted(p.name for p in (root / ".locks").iterdir()) == [f"{SHA}.lock"]
    assert sorted(p.name for p in root.iterdir()) == [".locks", ".tmp", SHA]


def test_second_call_does_not_fill(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    calls: list[Path] = []
    first = ensure(root, SHA, make_fill(calls))
    stamp = (first / COMPLETE).stat().st_mtime_ns

    def never(work: Path, tree: Path) -> None:
        raise AssertionError("fill called for a complete entry")

    assert ensure(root, SHA, never) == first
    assert len(calls) == 1
    assert (first / COMPLETE).stat().st_mtime_ns == stamp


def test_entries_are_per_sha(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    a = ensure(root, SHA, make_fill(content="a"))
    b = ensure(root, OTHER, make_fill(content="b"))
    assert a != b
    assert (a / "data.txt").read_text() == "a"
    assert (b / "data.txt").read_text() == "b"
    assert marker(b) == {"format": 1, "sha256": OTHER}
    assert not is_complete(a, OTHER)


def test_fill_that_raises_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"

    def broken(work: Path, tree: Path) -> None:
        (tree / "pkg").mkdir(parents=True)
        (tree / "pkg" / "half.py").write_text("")
        (work / "download.whl").write_bytes(b"partial")
        raise RuntimeError("network went away")

    with pytest.raises(RuntimeError, match="network went away"):
        ensure(root, SHA, broken)
    assert not (root / SHA).exists()
    assert tmp_children(root) == []
    assert sorted(p.name for p in root.iterdir()) == [".locks", ".tmp"]
    # The lock was released: the next call fills and succeeds.
    calls: list[Path] = []
    assert ensure(root, SHA, make_fill(calls)) == root / SHA
    assert len(calls) == 1


def test_fill_that_leaves_no_tree_publishes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with pytest.raises(CacheError) as info:
        ensure(root, SHA, lambda work, tree: None)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not (root / SHA).exists()
    assert tmp_children(root) == []


def test_fill_cannot_fake_the_marker(tmp_path: Path) -> None:
    """A tree that already holds a marker (say, from a wheel) is not published."""
    root = tmp_path / "cache"

    def sneaky(work: Path, tree: Path) -> None:
        tree.mkdir()
        (tree / COMPLETE).write_text(json.dumps({"format": 1, "sha256": SHA}))

    with pytest.raises(CacheError) as info:
        ensure(root, SHA, sneaky)
    assert isinstance(info.value.__cause__, FileExistsError)
    assert not (root / SHA).exists()
    assert tmp_children(root) == []


# ------------------------------------------------ corrupt or foreign entries (C3, C4)


def _empty(entry: Path) -> None:
    entry.mkdir()


def _no_marker(entry: Path) -> None:
    entry.mkdir()
    (entry / "pkg").mkdir()
    (entry / "pkg" / "__init__.py").write_text("stale")


def _wrong_sha(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).write_text(json.dumps({"format": 1, "sha256": OTHER}))


def _garbage(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).write_bytes(b"\xff\xfe not json {")


def _not_a_dict(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).write_text(json.dumps([SHA]))


def _empty_marker(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).write_text("")


def _marker_is_a_dir(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).mkdir()


def _unknown_format(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).write_text(json.dumps({"format": 2, "sha256": SHA}))


def _no_format(entry: Path) -> None:
    _no_marker(entry)
    (entry / COMPLETE).write_text(json.dumps({"sha256": SHA}))


def _a_file(entry: Path) -> None:
    entry.write_text("not a folder")


def _dangling_symlink(entry: Path) -> None:
    entry.symlink_to(entry.parent / "nowhere")


CORRUPT = {
    "empty-dir": _empty, "no-marker": _no_marker, "wrong-sha": _wrong_sha,
    "garbage": _garbage, "not-a-dict": _not_a_dict, "empty-marker": _empty_marker,
    "marker-is-a-dir": _marker_is_a_dir, "unknown-format": _unknown_format,
    "no-format": _no_format, "a-file": _a_file, "dangling-symlink": _dangling_symlink,
}


@pytest.mark.parametrize("make", CORRUPT.values(), ids=CORRUPT.keys())
def test_is_complete_refuses_a_bad_entry(tmp_path: Path, make: Callable[[Path], None]) -> None:
    entry = tmp_path / SHA
    make(entry)
    assert is_complete(entry, SHA) is False


def test_is_complete_on_missing_and_good_entries(tmp_path: Path) -> None:
    entry = tmp_path / SHA
    assert is_complete(entry, SHA) is False
    entry.mkdir()
    (entry / COMPLETE).write_text(json.dumps({"format": 1, "sha256": SHA}))
    assert is_complete(entry, SHA) is True
    assert is_complete(entry, OTHER) is False


@pytest.mark.parametrize("make", CORRUPT.values(), ids=CORRUPT.keys())
def test_bad_entry_is_moved_aside_and_rebuilt(tmp_path: Path,
                                              make: Callable[[Path], None]) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    make(root / SHA)
    calls: list[Path] = []
    entry = ensure(root, SHA, make_fill(calls))
    assert len(calls) == 1
    assert entry.is_dir() and not entry.is_symlink()
    assert sorted(p.name for p in entry.iterdir()) == [COMPLETE, "data.txt", "pkg"]
    assert (entry / "pkg" / "__init__.py").read_text() == "hello"
    assert marker(entry) == {"format": 1, "sha256": SHA}
    assert tmp_children(root) == []  # the old entry was removed, not kept in .tmp


def test_symlinked_entry_is_replaced_without_touching_its_target(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    _no_marker(elsewhere)
    (root / SHA).symlink_to(elsewhere)
    entry = ensure(root, SHA, make_fill())
    assert not entry.is_symlink() and is_complete(entry, SHA)
    assert (elsewhere / "pkg" / "__init__.py").read_text() == "stale"


# ---------------------------------------------------------------- concurrency (C1)


def test_threads_fill_once(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    calls: list[Path] = []
    fill = make_fill(calls, delay=0.1)
    barrier = threading.Barrier(8)
    results: list[Path] = []
    errors: list[BaseException] = []
    guard = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            got = ensure(root, SHA, fill)
        except BaseException as exc:
            with guard:
                errors.append(exc)
            raise
        with guard:
            results.append(got)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(calls) == 1
    assert results == [root / SHA] * 8
    assert is_complete(root / SHA, SHA)
    assert tmp_children(root) == []


WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from carton_hook.cache.entries import ensure

    root, sha, count, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])

    def fill(work, tree):
        started = time.time()
        time.sleep(1.0)
        (tree / "pkg").mkdir(parents=True)
        (tree / "pkg" / "__init__.py").write_text("x = 1\\n")
        with count.open("a") as f:
            f.write(f"{work} {started} {time.time()}\\n")

    (go.parent / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    asked = time.time()
    print(ensure(root, sha, fill), asked)
""")


def test_processes_fill_once(tmp_path: Path) -> None:
    """Four processes ask for one entry at once: one fills it, the others wait for it
    (each asked while it was being filled) and find it complete."""
    root = tmp_path / "cache"
    count = tmp_path / "fills.txt"
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(root), SHA, str(count),
                               str(go)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()  # all four are at the starting line
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in outputs]
    results = [out.split() for out, _ in outputs]
    assert [path for path, _ in results] == [str(root / SHA)] * 4
    fills = count.read_text().splitlines()
    assert len(fills) == 1
    ended = fills[0].split()[2]
    assert all(float(asked) < float(ended) for _, asked in results), (fills, results)
    assert is_complete(root / SHA, SHA)
    assert (root / SHA / "pkg" / "__init__.py").read_text() == "x = 1\n"
    assert tmp_children(root) == []


def test_filelock_waits_for_the_entry_lock(tmp_path: Path) -> None:
    """The runtime takes flock itself; filelock (what earlier versions took, on a shared
    cache) takes the same flock, so it waits for it (the other way round:
    test_lock_timeout_names_the_sha)."""
    from filelock import FileLock, Timeout

    root = tmp_path / "cache"
    entered = threading.Event()
    release = threading.Event()

    def fill(work: Path, tree: Path) -> None:
        entered.set()
        release.wait(10)
        make_fill()(work, tree)

    t = threading.Thread(target=ensure, args=(root, SHA, fill))
    t.start()
    try:
        assert entered.wait(10)
        with pytest.raises(Timeout):
            FileLock(str(root / ".locks" / f"{SHA}.lock")).acquire(timeout=0.2)
    finally:
        release.set()
        t.join(10)
    assert is_complete(root / SHA, SHA)


def test_without_flock_the_entry_lock_is_filelocks(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import filelock

    taken: list[str] = []
    real = filelock.FileLock

    def recording(path: str) -> filelock.BaseFileLock:
        taken.append(path)
        return real(path)

    monkeypatch.setattr(filelock, "FileLock", recording)
    from carton_hook import system

    monkeypatch.setattr(system, "HAVE_FLOCK", False)  # what an OS without flock looks like
    root = tmp_path / "cache"
    ensure(root, SHA, make_fill())
    assert is_complete(root / SHA, SHA)
    assert taken == [str(root / ".locks" / f"{SHA}.lock")]


def test_lock_timeout_names_the_sha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from filelock import FileLock

    root = tmp_path / "cache"
    (root / ".locks").mkdir(parents=True)
    monkeypatch.setattr(cache, "LOCK_TIMEOUT", 0.2)
    held = FileLock(str(root / ".locks" / f"{SHA}.lock"))
    result: list[BaseException] = []

    def other_thread() -> None:  # flock is per open file, so another thread contends
        try:
            ensure(root, SHA, make_fill())
        except BaseException as exc:
            result.append(exc)

    with held:
        t = threading.Thread(target=other_thread)
        t.start()
        t.join(10)
    assert len(result) == 1
    assert isinstance(result[0], cache.CacheError)
    assert SHA in str(result[0])
    assert not (root / SHA).exists()


# ---------------------------------------------------------------- sweeping .tmp


def test_stale_tmp_entries_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    tmp = root / ".tmp"
    tmp.mkdir(parents=True)
    old = time.time() - cache.STALE_TMP_SECONDS - 3600
    recent = time.time() - cache.STALE_TMP_SECONDS + 3600
    stale_dir = tmp / "stale-dir"
    (stale_dir / "deep").mkdir(parents=True)
    (stale_dir / "deep" / "f").write_text("x")
    stale_file = tmp / "stale-file"
    stale_file.write_text("x")
    fresh_dir = tmp / "fresh-dir"
    fresh_dir.mkdir()
    almost = tmp / "almost-stale"
    almost.mkdir()
    stale_link = tmp / "stale-link"
    stale_link.symlink_to(tmp_path / "gone")
    for path in (stale_dir, stale_file, stale_link):
        os.utime(path, (old, old), follow_symlinks=False)
    os.utime(almost, (recent, recent))
    ensure(root, SHA, make_fill())
    assert tmp_children(root) == ["almost-stale", "fresh-dir"]


# ------------------------------------------------ disk and permissions (C4, C5)


def test_transient_rename_errors_are_retried(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    real_rename = os.rename
    failures = [errno.EBUSY, errno.EBUSY]

    def flaky(src: object, dst: object) -> None:
        if failures and Path(str(dst)).name == SHA:
            raise OSError(failures.pop(0), "Device or resource busy")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(cache.os, "rename", flaky)
    monkeypatch.setattr(cache.time, "sleep", lambda s: None)
    root = tmp_path / "cache"
    entry = ensure(root, SHA, make_fill())
    assert failures == [] and is_complete(entry, SHA)
    assert tmp_children(root) == []


def test_rename_onto_an_existing_entry_is_never_forced(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def not_empty(src: object, dst: object) -> None:
        raise OSError(errno.ENOTEMPTY, "Directory not empty")

    monkeypatch.setattr(cache.os, "rename", not_empty)
    root = tmp_path / "cache"
    with pytest.raises(CacheError, match="Directory not empty"):
        ensure(root, SHA, make_fill())


def test_disk_full_while_filling_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    import errno

    def full(work: Path, tree: Path) -> None:
        tree.mkdir()
        (tree / "half.py").write_text("x = 1\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    root = tmp_path / "cache"
    with pytest.raises(CacheError) as info:
        ensure(root, SHA, full)
    message = str(info.value)
    assert SHA in message and "No space left" in message and "CARTON_HOME" in message
    assert not (root / SHA).exists()
    assert tmp_children(root) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only modes")
def test_read_only_cache_root_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(CacheError, match="writable"):
            ensure(root, SHA, make_fill())
    finally:
        root.chmod(0o755)


def test_read_only_cache_root_as_root_is_a_clear_error(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores modes, so the refusal a read-only mount gives is injected."""
    import errno

    real_mkdir = Path.mkdir

    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        if self.parent == tmp_path / "cache":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(CacheError, match=r"Read-only file system.*writable"):
        ensure(tmp_path / "cache", SHA, make_fill())


def test_a_cache_path_with_spaces_and_non_ascii_works(tmp_path: Path) -> None:
    root = tmp_path / "my cache ünïcødé 模型" / "py311"
    entry = ensure(root, SHA, make_fill())
    assert is_complete(entry, SHA)
    assert (entry / "pkg" / "__init__.py").is_file()


def test_remove_takes_an_entry_out_under_its_lock(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    ensure(root, SHA, make_fill())
    assert remove(root, SHA) is True
    assert not (root / SHA).exists()
    assert tmp_children(root) == []
    assert remove(root, SHA) is False
    calls: list[Path] = []
    ensure(root, SHA, make_fill(calls))
    assert len(calls) == 1
