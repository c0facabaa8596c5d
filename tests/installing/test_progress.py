"""Progress of a first run: drawn on a terminal, plain lines into a pipe or a log, nothing
with --quiet."""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.installing.progress import GOING_ON, WAITING, Progress

from ..factory import make_wheel
from ..indexserver import PackageIndex

MODEL = {"model.py": "import alpha\ndef main():\n    print(alpha.VALUE)\n"}


def run_on_terminal(env: dict[str, str], *args: str | Path) -> tuple[int, str, str]:
    """Run `python -m carton_hook ARGS` with its stderr on a pseudo-terminal; returns the
    exit code, stdout, and what the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "carton_hook", *map(str, args)], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    out = proc.stdout.read() if proc.stdout else b""
    return proc.wait(), out.decode(), shown.decode(errors="replace")


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    # Weight that does not deflate; the same bytes in each test, so that its lock is kept.
    weight = random.Random(1).randbytes(300_000)
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "VALUE = 'alpha 1.0'\n", "alpha/big.dat": weight}))
    return build_carton("alpha\n", MODEL)


def test_a_first_run_shows_progress_on_a_terminal(carton: Path, pypi: PackageIndex,
                                                  hermetic_env: dict[str, str]) -> None:
    """Drawn while the model waits, at each tick (`progress.TICK`): the wheel comes in
    about a second here, so that the wait lasts several ticks (a wait shorter than one
    may show nothing, and the model's process goes on as soon as its wheel is in)."""
    env = {**hermetic_env, "CARTON_PROGRESS_AFTER": "0"}
    pypi.bandwidth = 300_000
    code, out, shown = run_on_terminal(env, carton)
    pypi.bandwidth = None
    assert (code, out) == (0, "alpha 1.0\n"), shown
    assert "carton: demo-model 0.1.0: installing 1 package (0.3 MB) into " in shown
    assert "/1 packages, " in shown and (" MB/s" in shown or "MB downloaded" in shown)
    assert shown.endswith("\r\x1b[K"), repr(shown[-40:])  # the status line is cleared
    code, out, shown = run_on_terminal(env, carton)  # warm: nothing to say
    assert (code, shown) == (0, "")


def test_quiet_says_nothing_on_a_terminal_or_into_a_pipe(carton: Path,
                                                         hermetic_env: dict[str, str]) -> None:
    env = {**hermetic_env, "CARTON_PROGRESS_AFTER": "0"}
    code, _, shown = run_on_terminal(env, "-q", carton)
    assert (code, shown) == (0, "")
    Path(env["CARTON_HOME"]).rename(Path(env["CARTON_HOME"] + "-old"))
    proc = subprocess.run([sys.executable, "-m", "carton_hook", "-q", str(carton)], env=env,
                          capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "alpha 1.0\n", "")


@pytest.mark.parametrize("verbose", [False, True])
def test_a_first_run_into_a_pipe_writes_plain_lines(carton: Path, hermetic_env: dict[str, str],
                                                    pypi: PackageIndex, verbose: bool) -> None:
    """A CI job's or a container's log gets whole lines, nothing redrawn: what is
    installed, where, how big, and when it is done; `-v` names each package."""
    env = {**hermetic_env, "CARTON_PROGRESS_AFTER": "0"}
    args = [sys.executable, "-m", "carton_hook", *(["-v"] if verbose else []), str(carton)]
    # A slow download, so that the model waits: a run that never waits says nothing (CI,
    # 2026-12-06: its 0.3 MB was in before the model's import asked for it).
    pypi.bandwidth = 300_000
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    pypi.bandwidth = None
    assert (proc.returncode, proc.stdout) == (0, "alpha 1.0\n"), proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("carton: demo-model 0.1.0: installing 1 package (0.3 MB) into ")
    assert all(line.startswith("carton: ") for line in lines), lines
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
    if lines[-1].startswith("carton: 0/1 packages installed in "):
        # A loaded machine: the model went on before the wheel was in (it may, once the
        # download has started), and its import found it there without waiting.
        assert lines[-1].endswith("; the rest installs while the model runs"), lines
    else:
        assert lines[-1].startswith("carton: installed 1 package (0.3 MB) in "), lines
        assert ("carton: installed alpha 1.0 (0.3 MB)" in lines) is verbose, lines
    warm = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert (warm.returncode, warm.stderr) == (0, "")  # nothing to install: nothing to say


def test_into_a_log_the_status_is_a_line_every_few_seconds() -> None:
    """The status every `every` seconds while the model waits; when it goes on, how far
    the install got (only if something was said while it waited); when the install is
    done, one line that says so."""
    import time

    read, write = os.pipe()
    progress = Progress(write, after=0, log=True, every=0.3)
    progress.start("demo: installing 2 packages", packages=2, total=2_000_000)
    time.sleep(1.0)  # the title, then about three status lines
    progress.advance(1_000_000)
    progress.finished_one()
    progress.hold()  # the model goes on while the second package installs
    time.sleep(0.5)  # held: nothing
    progress.resume()  # it waits again
    time.sleep(0.1)
    progress.finished_one()
    progress.stop()
    os.close(write)
    lines = os.read(read, 65536).decode().splitlines()
    os.close(read)
    assert lines[0] == "carton: demo: installing 2 packages"
    status = [line for line in lines if line.startswith("carton:  0/2 packages, ")]
    assert 2 <= len(status) <= 5, lines
    went_on = lines.index(next(line for line in lines if "the rest installs" in line))
    assert lines[went_on].startswith("carton: 1/2 packages installed in "), lines
    assert lines[-1].startswith("carton: installed 2 packages (2.0 MB) in "), lines
    assert sum("installed 2 packages" in line for line in lines) == 1


class _LockThenRun:
    """A lock that runs `then` once, in a thread of its own, right after it is first
    released, and gives that thread half a second before the releasing one goes on."""

    def __init__(self, then: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._then: Callable[[], None] | None = then
        self.thread: threading.Thread | None = None

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        then, self._then = self._then, None
        if then is not None:
            self.thread = threading.Thread(target=then)
            self.thread.start()
            self.thread.join(0.5)


def test_a_verbose_log_names_the_last_package_when_the_model_goes_on_meanwhile() -> None:
    """The model's process goes on (`hold`) just as the last package is counted: the
    package is named before the line that says the install is done, not left out."""
    read, write = os.pipe()
    progress = Progress(write, after=0, log=True, verbose=True, every=60)
    progress.start("demo: installing 1 package", packages=1, total=1_000_000)
    hooked = _LockThenRun(progress.hold)
    progress._lock = hooked  # type: ignore[assignment]
    progress.finished_one(installed="one 1.0 (1.0 MB)")
    assert hooked.thread is not None
    hooked.thread.join()
    progress.stop()
    os.close(write)
    lines = os.read(read, 65536).decode().splitlines()
    os.close(read)
    assert lines[1:] == ["carton: installed one 1.0 (1.0 MB)", lines[-1]], lines
    assert lines[-1].startswith("carton: installed 1 package (1.0 MB) in "), lines


def test_a_verbose_log_names_the_last_package_when_the_model_said_it_goes_on() -> None:
    """The model's process said it goes on, and the word is read as the last package is
    counted (the progress reads what the model said before it writes anything): the
    package is named before the line that says the install is done, not held back."""
    read, write = os.pipe()
    said, say = os.pipe()
    progress = Progress(write, after=0, log=True, verbose=True, every=60)
    progress.hear(said, lambda _: None)
    progress.start("demo: installing 1 package", packages=1, total=1_000_000)
    title = os.read(read, 65536).decode()  # drawn by the progress' own thread
    assert title == "carton: demo: installing 1 package\n"
    hooked = _LockThenRun(lambda: os.write(say, f"{GOING_ON}\n".encode()))
    progress._lock = hooked  # type: ignore[assignment]
    progress.finished_one(installed="one 1.0 (1.0 MB)")
    progress.stop()
    os.close(write)
    lines = os.read(read, 65536).decode().splitlines()
    for fd in (read, said, say):
        os.close(fd)
    assert lines[:1] == ["carton: installed one 1.0 (1.0 MB)"], lines
    assert len(lines) == 2 and lines[1].startswith("carton: installed 1 package (1.0 MB) in ")


def test_a_log_says_nothing_more_once_it_said_the_install_is_done() -> None:
    """The model's process went on, then waits again for the wheel's entry, which is
    published a moment after the package is counted: both words are read as the last
    package is counted. The log said the install is done; no status line follows it."""
    import time

    read, write = os.pipe()
    said, say = os.pipe()
    progress = Progress(write, after=0, log=True, every=60)
    progress.hear(said, lambda _: None)
    progress.start("demo: installing 1 package", packages=1, total=1_000_000)
    assert os.read(read, 65536).decode() == "carton: demo: installing 1 package\n"
    hooked = _LockThenRun(lambda: os.write(say, f"{GOING_ON}\n{WAITING}\n".encode()))
    progress._lock = hooked  # type: ignore[assignment]
    progress.finished_one(installed="one 1.0 (1.0 MB)")
    time.sleep(0.3)  # the progress' own thread draws meanwhile, if it would
    progress.stop()
    os.close(write)
    lines = os.read(read, 65536).decode().splitlines()
    for fd in (read, said, say):
        os.close(fd)
    assert len(lines) == 1, lines
    assert lines[0].startswith("carton: installed 1 package (1.0 MB) in ")


def test_a_verbose_log_names_a_package_installed_while_the_model_ran() -> None:
    """A package installed while the model's process went on is named with the next
    line the log gets, before the line that says the install is done, never left out."""
    read, write = os.pipe()
    progress = Progress(write, after=0, log=True, verbose=True, every=60)
    progress.start("demo: installing 2 packages", packages=2, total=2_000_000)
    progress.finished_one(installed="one 1.0 (1.0 MB)")  # while the model waits: said now
    progress.hold()  # the model goes on
    progress.finished_one(installed="two 1.0 (1.0 MB)")  # held: amid the model's output
    progress.resume()  # the model waits again, and the install is done
    progress.stop()
    os.close(write)
    lines = os.read(read, 65536).decode().splitlines()
    os.close(read)
    named = [line for line in lines if line.startswith("carton: installed ") and "MB)" in line
             and "packages" not in line]
    assert named == ["carton: installed one 1.0 (1.0 MB)",
                     "carton: installed two 1.0 (1.0 MB)"], lines
    assert lines[-2:] == ["carton: installed two 1.0 (1.0 MB)", lines[-1]], lines
    assert lines[-1].startswith("carton: installed 2 packages (2.0 MB) in "), lines


def test_the_status_line_is_drawn_only_while_the_model_waits(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """The model goes on while the plan's worker still installs `slow` (the index holds
    it back): what the model writes to the terminal never follows a status line, the
    line is drawn again while the model waits for `slow`, and cleared at the end."""
    import threading
    import time

    pypi.add(make_wheel(tmp_path / "w", "fast", "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "slow", "1.0", {"slow/__init__.py": "",
                                                         "slow/big.dat": os.urandom(300_000)}))
    flag = tmp_path / "waiting-for-slow"
    carton = build_carton("fast\nslow\n", {"model.py": f"""
import pathlib, sys, time
import fast
for _ in range(3):
    sys.stderr.write("MODEL fast\\n")
    time.sleep(0.3)
pathlib.Path({str(flag)!r}).touch()
import slow
sys.stderr.write("MODEL slow\\n")
def main():
    pass
"""})
    gate = threading.Event()
    pypi.held["slow-1.0-py3-none-any.whl"] = gate
    env = {**hermetic_env, "CARTON_PROGRESS_AFTER": "0"}

    def release() -> None:
        deadline = time.monotonic() + 60
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the model waits for slow: a few ticks of the status line
        gate.set()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        code, _, shown = run_on_terminal(env, carton)
    finally:
        gate.set()
        releaser.join()
    assert code == 0, shown
    # What each line of the terminal shows: a status line is cleared with "\r\x1b[K".
    visible = [line.split("\r\x1b[K")[-1] for line in shown.split("\r\n")]
    model_lines = [line for line in visible if "MODEL" in line]
    assert model_lines == ["MODEL fast"] * 3 + ["MODEL slow"], repr(shown)
    waited = shown[shown.rindex("MODEL fast"):shown.index("MODEL slow")]
    assert "2 packages, " in waited, repr(shown)  # drawn while the model waited
    assert visible[-1] == "", repr(shown[-60:])  # and cleared at the end


def test_a_short_first_run_says_nothing(carton: Path, hermetic_env: dict[str, str]) -> None:
    code, _, shown = run_on_terminal({**hermetic_env, "CARTON_PROGRESS_AFTER": "60"}, carton)
    assert (code, shown) == (0, "")


def test_the_status_line_counts_bytes_packages_and_restarts() -> None:
    read, write = os.pipe()
    progress = Progress(write, after=60)
    progress.start("demo", packages=2, total=3_000_000)
    progress.advance(2_000_000)
    progress.advance(-500_000)  # a download started over
    progress.finished_one()
    progress.doing("unpacking alpha")
    line = progress.status()
    progress.stop()
    os.close(write)
    assert os.read(read, 100) == b""  # stopped before its first second: nothing drawn
    os.close(read)
    assert line.startswith("  1/2 packages, 1.5/3.0 MB at ")
    assert line.endswith(" MB/s; unpacking alpha")
    progress.advance(1_500_000)
    assert progress.status() == "  1/2 packages, 3.0 MB downloaded; unpacking alpha"


def test_nothing_is_drawn_once_the_models_process_has_ended(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's worker installs on after the model's process has ended (what it never
    imported): the terminal is the shell's again, so the worker draws nothing more, not
    even the line that clears its status."""
    import time

    read, write = os.pipe()
    progress = Progress(write, after=0)
    progress.start("demo", packages=1, total=1_000)
    deadline = time.monotonic() + 30
    os.set_blocking(read, False)
    shown = b""
    while b"0/1 packages" not in shown and time.monotonic() < deadline:
        time.sleep(0.01)
        with contextlib.suppress(BlockingIOError):
            shown += os.read(read, 4096)
    assert b"0/1 packages" in shown
    monkeypatch.setattr(os, "getppid", lambda: 1)  # what the worker sees once orphaned
    time.sleep(0.3)  # a tick or two: nothing more may arrive after what was drawn already
    with contextlib.suppress(BlockingIOError):
        os.read(read, 65536)
    progress.advance(500)
    time.sleep(0.5)
    progress.stop()
    with pytest.raises(BlockingIOError):
        os.read(read, 65536)
    os.close(write)
    os.close(read)


def test_what_the_model_said_is_read_before_anything_is_drawn() -> None:
    """The model's process goes on without waiting for the reply in the first `after`
    seconds: what it said by then is acted on before anything is drawn, although no
    thread of this process has read it yet (`hear`, not `listen`)."""
    import time

    from carton_hook.installing.progress import QUIET

    said, says = os.pipe()  # the model's process -> this one
    out, write = os.pipe()  # what is drawn
    os.set_blocking(out, False)
    answers: list[str] = []
    progress = Progress(write, after=0.2, log=True)
    progress.hear(said, answers.append)
    os.write(says, b"going-on\n")  # within the silent seconds: not waited for
    progress.start("demo: installing 1 package", packages=1, total=1_000_000)
    time.sleep(0.6)
    with pytest.raises(BlockingIOError):
        os.read(out, 65536)  # held: nothing drawn after `after`
    assert answers == [QUIET]
    os.write(says, b"waiting\n")  # the model waits: drawn `after` seconds on
    drawn = b""
    deadline = time.monotonic() + 30
    while not drawn.endswith(b"\n") and time.monotonic() < deadline:
        time.sleep(0.05)
        with contextlib.suppress(BlockingIOError):
            drawn += os.read(out, 65536)
    progress.stop()
    assert drawn.decode().startswith("carton: demo: installing 1 package\n"), drawn
    for fd in (said, says, out, write):
        os.close(fd)
