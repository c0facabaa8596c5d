"""carton_hook/trace.py: `CARTON_TRACE=FILE` appends `SECONDS PID THREAD STEP` lines to
FILE, from every process that has it; nothing at all when it is unset.

The file is chosen when the module is imported, so each test runs a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

MARK = "from carton_hook.trace import mark\n"


def run(code: str, cwd: Path, trace: Path | str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTON_")}
    if trace is not None:
        env["CARTON_TRACE"] = str(trace)
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False)


def fields(trace: Path) -> list[list[str]]:
    return [line.split(" ", 3) for line in trace.read_text(encoding="utf-8").splitlines()]


def test_each_step_is_one_line_of_seconds_pid_thread_and_step(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    before = time.time()
    proc = run(MARK + "import os\nprint(os.getpid())\nmark('worker: imported')\n"
               "mark('model: waits for 3 wheels')\n", tmp_path, trace)
    after = time.time()
    assert proc.returncode == 0, proc.stderr
    lines = fields(trace)
    assert [(pid, thread, step) for _, pid, thread, step in lines] == [
        (proc.stdout.strip(), "MainThread", "worker: imported"),
        (proc.stdout.strip(), "MainThread", "model: waits for 3 wheels")]
    for seconds, _, _, _ in lines:
        assert len(seconds.partition(".")[2]) == 6
        assert before <= float(seconds) <= after
    assert float(lines[0][0]) <= float(lines[1][0])


def test_lines_are_appended_by_every_process_into_one_timeline(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    trace.write_text("1.000000 1 MainThread an earlier run\n")
    for step in ("model: starting the worker", "worker: ready"):
        assert run(MARK + f"mark({step!r})\n", tmp_path, trace).returncode == 0
    lines = fields(trace)
    assert [line[3] for line in lines] == ["an earlier run", "model: starting the worker",
                                           "worker: ready"]
    assert lines[1][1] != lines[2][1]  # two processes


@pytest.mark.parametrize(("name", "field"), [
    ("ThreadPoolExecutor-0_1", "ThreadPoolExecutor-0_1"),
    ("Thread-1 (run)", "Thread-1_(run)"),  # a default name's spaces would split the line
])
def test_the_thread_that_marks_is_named_in_one_field(tmp_path: Path, name: str,
                                                     field: str) -> None:
    trace = tmp_path / "trace.txt"
    code = (MARK + "import threading\n"
            "t = threading.Thread(target=mark, args=('demo.whl: fetching',),"
            f" name={name!r})\nt.start()\nt.join()\n")
    assert run(code, tmp_path, trace).returncode == 0
    assert [line[2:] for line in fields(trace)] == [[field, "demo.whl: fetching"]]


def test_nothing_is_written_when_the_variable_is_unset_or_empty(tmp_path: Path) -> None:
    for value in (None, ""):
        proc = run(MARK + "mark('worker: imported')\n", tmp_path, value)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert list(tmp_path.iterdir()) == []


def test_a_trace_file_that_cannot_be_written_is_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    missing = tmp_path / "no-such-folder" / "trace.txt"
    for trace in (folder, missing):
        proc = run(MARK + "mark('worker: imported')\nprint('went on')\n", tmp_path, trace)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "went on\n", "")
    assert list(folder.iterdir()) == [] and not missing.parent.exists()


def test_a_step_that_is_not_utf8_still_writes_its_line(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    proc = run(MARK + "mark('caf\\udce9.whl: fetching')\n", tmp_path, trace)
    assert proc.returncode == 0, proc.stderr
    assert fields(trace)[0][3] == "caf?.whl: fetching"
