"""The model's side of the worker boundary: how a worker's answer, or its failure, comes
back. The worker here is a stand-in module run the way the real one is (`python -m`,
with carton's folder on its path), so each test says exactly what the worker printed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook import loading
from carton_hook.errors import WorkerError
from carton_hook.loading import workerclient


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """`write(source)` makes the worker module that `run_worker` starts."""
    folder = tmp_path / "standin"
    folder.mkdir()
    monkeypatch.setenv("CARTON_RUNTIME_DEPS", str(folder))  # on the worker's path
    monkeypatch.setattr(workerclient, "WORKER_MODULE", "standin_worker")

    def write(source: str) -> None:
        (folder / "standin_worker.py").write_text(textwrap.dedent(source))

    return write


def test_what_the_worker_prints_is_the_answer(stand_in: Callable[[str], None]) -> None:
    stand_in("""
        import sys
        print("answer:", *sys.argv[1:])
    """)
    assert workerclient.run_worker("install", "x") == "answer: install x\n"


def test_a_failure_comes_back_with_its_kind(stand_in: Callable[[str], None],
                                            capfd: pytest.CaptureFixture[str]) -> None:
    stand_in("""
        import json, sys
        print("carton: warning: said on the way", file=sys.stderr)
        print(json.dumps({"error": "model.carton: no lock section for here",
                          "kind": "no-environment"}), file=sys.stderr)
        sys.exit(3)
    """)
    with pytest.raises(WorkerError) as caught:
        workerclient.run_worker("plan")
    assert (str(caught.value), caught.value.kind) == (
        "model.carton: no lock section for here", "no-environment")
    assert capfd.readouterr().err == "carton: warning: said on the way\n"  # passed on


def test_a_worker_that_crashes_is_a_crash_with_its_last_line(
        stand_in: Callable[[str], None], capfd: pytest.CaptureFixture[str]) -> None:
    stand_in("""
        raise SystemExit("something went badly wrong")
    """)
    with pytest.raises(WorkerError) as caught:
        workerclient.run_worker("plan")
    assert (str(caught.value), caught.value.kind) == ("something went badly wrong", "crash")
    assert "something went badly wrong" in capfd.readouterr().err


def test_the_worker_runs_with_the_callers_interpreter_and_carton_on_its_path(
        stand_in: Callable[[str], None]) -> None:
    stand_in("""
        import sys, carton_hook
        print(sys.executable)
        print(carton_hook.__file__)
    """)
    python, hook = workerclient.run_worker().splitlines()
    assert python == loading.WORKER_PYTHON
    assert Path(hook).parent.parent == Path(workerclient.PACKAGE_PARENT)


def test_drain_passes_on_what_the_worker_said_and_the_relay_did_not(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """No relaying thread here: what the pipe holds at the model's exit is only said if
    `drain` says it."""
    said = tmp_path / "said"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "print('carton: warning: a late word', file=sys.stderr, flush=True)\n"
         f"open({str(said)!r}, 'w').close()\ntime.sleep(30)\n"],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        background = workerclient.Background(proc)
        background.go_live()
        deadline = time.monotonic() + 10
        while not said.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        background.drain()
        assert capfd.readouterr().err == "carton: warning: a late word\n"
        background.drain()  # nothing more to say, and no waiting for it
        assert capfd.readouterr().err == ""
    finally:
        proc.kill()
        proc.wait()


def test_a_warning_just_before_the_model_ends_is_not_lost(
        stand_in: Callable[[str], None], tmp_path: Path) -> None:
    """The model's process ends right after the worker warned (a mirror fell back, then
    the wheel it waited for was published): the warning still reaches its stderr."""
    said = tmp_path / "said"
    stand_in(f"""
        import json, sys, time
        print(json.dumps({{"ready": []}}), flush=True)
        print("carton: warning: the mirror does not list it", file=sys.stderr, flush=True)
        open({str(said)!r}, "w").close()
        time.sleep(30)
    """)
    model = textwrap.dedent(f"""
        import os, sys, time
        from carton_hook.loading import workerclient
        workerclient.WORKER_MODULE = "standin_worker"
        workerclient.start_worker("plan")
        while not os.path.exists({str(said)!r}):
            time.sleep(0.001)
    """)
    proc = subprocess.Popen([sys.executable, "-c", model], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CARTON_QUIET": "1"}, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=60)
        assert (proc.returncode, err) == (0, "carton: warning: the mirror does not list it\n")
    finally:
        # The stand-in worker outlives the model's process, as the real one may.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)


@pytest.mark.parametrize("silent", [True, False])
def test_the_model_goes_on_without_a_reply_only_while_the_worker_is_silent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, silent: bool) -> None:
    """In the worker's first silent seconds nothing can have been drawn, and the worker
    reads GOING_ON before it would draw (progress.Progress._take): `hush` says it and goes
    on. After them it waits for the reply that nothing more will be drawn; this worker
    never replies, so it waits until HUSH_TIMEOUT."""
    import threading

    monkeypatch.setattr(workerclient, "HUSH_TIMEOUT", 0.5)
    heard = tmp_path / "heard"
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         f"open({str(heard)!r}, 'w').write(sys.stdin.readline())\ntime.sleep(30)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        background = workerclient.Background(
            proc, listening=True, silent_until=time.monotonic() + (60 if silent else -1))
        threading.Thread(target=background.read_reports, daemon=True).start()
        started = time.monotonic()
        background.hush()
        waited = time.monotonic() - started
        assert (waited < 0.25) if silent else (waited >= 0.5), waited
        deadline = time.monotonic() + 10
        # The file exists once opened, before the line is written into it.
        while not (heard.exists() and heard.read_text()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert heard.read_text() == "going-on\n"
    finally:
        proc.kill()
        proc.wait()


def test_a_reply_counts_for_the_going_on_it_answers(tmp_path: Path) -> None:
    """A reply that comes late, after the model went on without it, does not stand in for
    the reply to a later GOING_ON: `hush` waits for as many replies as it said GOING_ON."""
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "for line in sys.stdin:\n"
         "    if line.strip() == 'going-on':\n"
         "        time.sleep(0.3)\n"
         "        print('{\"quiet\": true}', flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        background = workerclient.Background(proc, listening=True,
                                             silent_until=time.monotonic() + 60)
        threading.Thread(target=background.read_reports, daemon=True).start()
        background.hush()  # silent: not waited for; its reply comes in 0.3 s
        background._silent_until = 0.0  # the silent seconds are over
        started = time.monotonic()
        background.hush()  # waits for the second reply, not the first
        assert time.monotonic() - started >= 0.45
    finally:
        proc.kill()
        proc.wait()


def test_the_model_goes_on_as_its_worker_says_a_wheel_is_installed(tmp_path: Path) -> None:
    """The worker says INSTALLED as it publishes each wheel: a model's process waiting for
    it goes on then, without looking at the cache (which the test's `done` never says is
    complete), and while the worker goes on running."""
    import threading

    from carton_hook.installing.words import INSTALLED

    sha = "a" * 64
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "time.sleep(0.3)\n"
         f"print('{{\"{INSTALLED}\": \"{sha}\"}}', flush=True)\n"
         "time.sleep(30)\n"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    looked = []
    try:
        background = workerclient.Background(proc)
        background.shas = {sha}
        threading.Thread(target=background.read_reports, daemon=True).start()
        started = time.monotonic()
        background.wait([sha], lambda s: bool(looked.append(s)))
        waited = time.monotonic() - started
        assert 0.25 <= waited < 10
        assert proc.poll() is None  # it did not wait for the worker's end
        assert sha in background.installed
        # The cache is still looked at meanwhile, for what no word announces.
        assert len(looked) >= 2
    finally:
        proc.kill()
        proc.wait()
