"""carton_hook/loading/forkedworker.py: a first run's worker forked from the model's
process has what a started one has (its pipes, environment, path and descriptors, and
nothing else of the model's), ends without running the model's exit, and is forked only
where that is safe. Each fork is made in a fresh interpreter, as the model's process is
one: pytest's own process has threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

ROOT = str(Path(__file__).resolve().parents[2])

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a worker is forked on Linux")

# The worker's `main` replaced before the fork by one that reports what it has.
FORK = textwrap.dedent("""
    import atexit, json, os, sys
    from carton_hook.installing import worker
    from carton_hook.loading import forkedworker

    def reporting_main(args):
        fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        print(json.dumps({"args": args, "fds": fds, "x": os.environ.get("CARTON_X"),
                          "path": sys.path[:1], "ppid": os.getppid(),
                          "started_by": worker.STARTED_BY}), flush=True)
        print(sys.stdin.readline().strip()[::-1], flush=True)
        print("said on stderr", file=sys.stderr)
        return BEHAVIOUR(args)

    def BEHAVIOUR(args):
        return 7

    exec(sys.argv[1])  # the test's BEHAVIOUR
    worker.main = reporting_main
    atexit.register(print, "the model's exit")
    kept_r, kept = os.pipe()
    other_r, other = os.pipe()
    print("unflushed, before the fork;", end=" ")
    env = {**os.environ, "CARTON_X": "1", "PYTHONPATH": "/first/on/its/path"}
    proc = forkedworker.fork_worker(["plan", "x"], env, [kept])
    proc.stdin.write("hello\\n")
    proc.stdin.flush()
    report = json.loads(proc.stdout.readline())
    report["reply"] = proc.stdout.readline().strip()
    report["stderr"] = proc.stderr.read()
    report["code"] = proc.wait()
    report.update(pid=os.getpid(), kept=kept, others=[other_r, other])
    print(json.dumps(report))
""")


def fork(behaviour: str = "") -> tuple[dict[str, object], str]:
    proc = subprocess.run([sys.executable, "-c", FORK, behaviour], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    # What the model's process had written but not flushed is written once, by it.
    before, _, rest = proc.stdout.partition("; ")
    assert before == "unflushed, before the fork" and "unflushed" not in rest, proc.stdout
    line, _, after = rest.partition("\n")
    return json.loads(line), after


def test_a_forked_worker_has_what_a_started_one_has() -> None:
    report, output = fork()
    assert report["code"] == 7 and report["args"] == ["plan", "x"]
    assert report["reply"] == "olleh" and report["stderr"] == "said on stderr\n"
    assert report["x"] == "1" and report["path"] == ["/first/on/its/path"]
    assert report["ppid"] == report["started_by"] == report["pid"]
    fds = report["fds"]
    assert isinstance(fds, list)
    assert report["kept"] in fds and not set(fds) & set(report["others"])  # type: ignore[arg-type]
    assert output == "the model's exit\n"  # once: the worker ends without it


@pytest.mark.parametrize(("behaviour", "code", "said"), [
    ("def BEHAVIOUR(args):\n    raise SystemExit(5)", 5, ""),
    ("def BEHAVIOUR(args):\n    raise SystemExit", 0, ""),
    ("def BEHAVIOUR(args):\n    raise RuntimeError('boom')", 1, "RuntimeError: boom"),
])
def test_a_forked_worker_ends_with_its_status_and_says_what_crashed_it(
        behaviour: str, code: int, said: str) -> None:
    report, output = fork(behaviour)
    assert report["code"] == code
    assert said in str(report["stderr"])
    assert output.count("the model's exit") == 1


MAY_FORK = textwrap.dedent("""
    import os, sys, threading, time
    from carton_hook import loading
    from carton_hook.loading.forkedworker import may_fork
    seen = [may_fork()]
    loading.MAY_FORK = True
    seen.append(may_fork())
    os.environ["CARTON_NO_FORK"] = "1"
    seen.append(may_fork())
    del os.environ["CARTON_NO_FORK"]
    sys.modules["packaging"] = type(sys)("packaging")  # a copy the model must not get
    seen.append(may_fork())
    del sys.modules["packaging"]
    loading.WORKER_PYTHON = "/elsewhere/python"
    seen.append(may_fork())
    loading.WORKER_PYTHON = sys.executable
    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
    seen.append(may_fork())
    print(seen)
""")


def test_a_worker_is_forked_only_by_carton_s_command_line_with_one_thread() -> None:
    out = subprocess.run([sys.executable, "-c", MAY_FORK], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out == "[False, True, False, False, False, False]\n"


# Logs each worker command started as an interpreter of its own (`plan`, `install`).
LOG_STARTED = textwrap.dedent("""
    import sys
    argv = sys.orig_argv
    if "carton_hook.installing.worker" in argv:
        with open({log!r}, "a") as f:
            f.write(argv[argv.index("carton_hook.installing.worker") + 1] + "\\n")
""")


def cold_run(tmp_path: Path, env: dict[str, str], carton: Path,
             also: str = "") -> tuple[list[str], list[list[str]]]:
    """A first run of `carton`: the worker commands started as interpreters, and the
    traced steps as [pid, step]."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    log, trace = tmp_path / "started.log", tmp_path / "trace.txt"
    for path in (log, trace):
        path.unlink(missing_ok=True)
    (site / "sitecustomize.py").write_text(LOG_STARTED.format(log=str(log)) + also)
    proc = run_hook({**env, "PYTHONPATH": str(site), "CARTON_TRACE": str(trace)}, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a\n", "")
    steps = [line.split(" ", 3) for line in trace.read_text().splitlines()]
    return (log.read_text().splitlines() if log.exists() else []), [
        [pid, step] for _, pid, _, step in steps]


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "V = 'a'\n"}))
    return build_carton("alpha\n", {"model.py": "import alpha\ndef main():\n"
                                                "    print(alpha.V)\n"})


def test_a_first_run_forks_its_worker_unless_told_not_to(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    started, steps = cold_run(tmp_path, hermetic_env, carton)
    model = next(pid for pid, step in steps if step.startswith("model: "))
    worker = {pid for pid, step in steps if step == "worker: imported"}
    assert started == [] and len(worker) == 1 and model not in worker
    assert any(step == "model: plan written" for _, step in steps)
    # Its wheel is cached now: the plan removed, a worker made it again, started.
    home = Path(hermetic_env["CARTON_HOME"])
    for plan in (home / "plans").iterdir():
        plan.unlink()
    started, steps = cold_run(tmp_path, {**hermetic_env, "CARTON_NO_FORK": "1"}, carton)
    assert started == ["plan"]


def test_a_process_with_a_thread_starts_its_worker(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    """A fork copies only the thread that forks: whatever another held stays held."""
    thread = ("import threading, time\n"
              "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n")
    started, _ = cold_run(tmp_path, hermetic_env, carton, also=thread)
    assert started == ["plan"]


def test_processes_started_together_fork_one_worker(
        tmp_path: Path, carton: Path, pypi: PackageIndex, hermetic_env: dict[str, str]) -> None:
    """The forked worker holds the plan's lock (its copy of the descriptor) as a started
    one does: the others wait for it, or find the plan made."""
    trace = tmp_path / "trace.txt"
    env = {**hermetic_env, "CARTON_TRACE": str(trace)}
    pypi.reset_counts()
    procs = [subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)], env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [(p.returncode, out) for p, (out, _) in zip(procs, results, strict=True)] == [
        (0, "a\n")] * 6, [err for _, err in results]
    steps = [line.split(" ", 3)[3] for line in trace.read_text().splitlines()]
    assert steps.count("worker: imported") == 1
    assert sum("/files/" in r for r in pypi.requests) == 1
    assert os.listdir(Path(hermetic_env["CARTON_HOME"]) / "plans") != []
