"""Races and crashes on one cold cache, many times over (THREATS C1, C2, C6): run by
`nox -s stress`, not by the default test run.

- 16 processes, each importing three wheels from four threads, race on an empty cache:
  every process succeeds, each wheel is downloaded once, every entry verifies.
- A cold run is killed with SIGKILL (its whole process group: the model's process and
  the worker that downloads, verifies, unpacks and publishes) at points spread over the
  whole run, CARTON_STRESS_KILLS times (default 50): afterwards no entry is trusted
  that does not verify, no lock is held, and the next run succeeds.

Each writes its figures to `$CARTON_STRESS_REPORT` (JSON) when that is set; the
figures in docs/security.md come from there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.cache.entries import is_complete
from carton_hook.commands.verify import check_entry

from ..factory import make_wheel
from ..indexserver import PackageIndex

pytestmark = pytest.mark.stress

PROCESSES = 16
ROUNDS = 3
# Read at import: the hermetic fixtures clear CARTON_* variables from the environment.
KILLS = int(os.environ.get("CARTON_STRESS_KILLS", "50"))
REPORT = os.environ.get("CARTON_STRESS_REPORT")
NAMES = ("alpha", "beta", "gamma")

MODEL = {"model.py": """
import threading

def main():
    errors = []
    def load(name):
        try:
            __import__(name)
        except BaseException as exc:
            errors.append(repr(exc))
    threads = [threading.Thread(target=load, args=(n,)) for n in ('alpha', 'beta', 'gamma') * 4]
    for t in threads: t.start()
    for t in threads: t.join()
    import alpha, beta, gamma
    print('ok' if not errors else errors, alpha.N + beta.N + gamma.N)
"""}


def report(key: str, figures: dict[str, object]) -> None:
    if not REPORT:
        return
    path = REPORT
    data = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
    data[key] = figures
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    # Wheels with many modules and some weight, so that unpacking and compiling take
    # long enough for kills to land inside them.
    for i, name in enumerate(NAMES):
        files: dict[str, str | bytes] = {f"{name}/__init__.py": f"N = {i + 1}\n",
                                         f"{name}/blob.bin": os.urandom(1_500_000)}
        files.update({f"{name}/m{j:03d}.py": f"def f{j}(x):\n    return x + {j}\n" * 20
                      for j in range(150)})
        pypi.add(make_wheel(tmp_path / "w", name, "1.0", files))
    return build_carton("alpha\nbeta\ngamma\n", MODEL)


def entries(home: Path) -> list[Path]:
    return sorted(p for p in home.glob("pythonpackages/*/*") if not p.name.startswith("."))


def assert_cache_is_sound(home: Path) -> tuple[int, int]:
    """Every entry with a marker verifies in full; returns (trusted, untrusted)."""
    trusted = untrusted = 0
    for entry in entries(home):
        if is_complete(entry, entry.name):
            assert check_entry(entry, entry.name) == [], entry
            trusted += 1
        else:
            untrusted += 1
    return trusted, untrusted


def assert_no_lock_is_held(home: Path) -> int:
    from filelock import FileLock

    locks = sorted(home.glob("pythonpackages/*/.locks/*.lock"))
    for path in locks:
        lock = FileLock(str(path))
        lock.acquire(timeout=5)  # flock dies with its holder: never stuck
        lock.release()
    return len(locks)


def run(carton: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "carton_hook", str(carton)], env=env,
                          capture_output=True, text=True, check=False, timeout=300)


def test_sixteen_processes_and_their_threads_race_on_a_cold_cache(
        carton: Path, pypi: PackageIndex, hermetic_env: dict[str, str], tmp_path: Path) -> None:
    downloads = 0
    for round_ in range(ROUNDS):
        home = tmp_path / f"home-{round_}"
        env = {**hermetic_env, "CARTON_HOME": str(home)}
        pypi.reset_counts()
        procs = [subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(PROCESSES)]
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert (proc.returncode, out.strip()) == (0, "ok 6"), err
        fetched = sorted(r for r in pypi.requests if r.startswith("/files/"))
        assert fetched == sorted(f"/files/{n}-1.0-py3-none-any.whl" for n in NAMES)
        downloads += len(fetched)
        trusted, untrusted = assert_cache_is_sound(home)
        assert (trusted, untrusted) == (3, 0)
        # No work folder is left (a compile ahead may still be renaming a .pyc file).
        assert not [p for p in home.glob("pythonpackages/*/.tmp/*") if p.is_dir()]
    report("race", {"rounds": ROUNDS, "processes_per_round": PROCESSES,
                    "threads_per_process": 12, "runs_succeeded": ROUNDS * PROCESSES,
                    "downloads": downloads, "wheels_per_round": len(NAMES),
                    "entries_found_corrupt": 0})


def test_sigkill_at_any_point_leaves_nothing_trusted_that_is_broken(
        carton: Path, hermetic_env: dict[str, str], tmp_path: Path) -> None:
    # How long a cold run takes here (the faster of two), so that the kills spread over
    # all of it: plan, extraction, download, verify, unpack, compile, publish.
    durations = []
    for i in range(2):
        started = time.monotonic()
        warmup = run(carton, {**hermetic_env, "CARTON_HOME": str(tmp_path / f"measure-{i}")})
        assert warmup.returncode == 0, warmup.stderr
        durations.append(time.monotonic() - started)
    cold = min(durations)
    outcomes = {"finished_before_the_kill": 0, "killed_before_any_download": 0,
                "killed_mid_download_or_verify": 0, "killed_mid_unpack_or_publish": 0,
                "killed_between_wheels": 0}
    trusted_total = untrusted_total = locks_checked = 0
    for trial in range(KILLS):
        home = tmp_path / f"kill-{trial}"
        env = {**hermetic_env, "CARTON_HOME": str(home)}
        proc = subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(cold * (trial + 0.5) / KILLS)
        finished = proc.poll() is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        time.sleep(0.05)  # the worker, in the same group, is gone too
        trusted, untrusted = assert_cache_is_sound(home)
        locks_checked += assert_no_lock_is_held(home)
        # A killed worker leaves its work folders in .tmp: dest/ or tree/ means it was
        # unpacking or publishing, a lone wheel file that it was downloading or verifying.
        work = [p for p in home.glob("pythonpackages/*/.tmp/*") if p.is_dir()]
        if finished:
            outcomes["finished_before_the_kill"] += 1
        elif any((w / "dest").exists() or (w / "tree").exists() for w in work):
            outcomes["killed_mid_unpack_or_publish"] += 1
        elif work:
            outcomes["killed_mid_download_or_verify"] += 1
        elif trusted:
            outcomes["killed_between_wheels"] += 1
        else:
            outcomes["killed_before_any_download"] += 1
        trusted_total += trusted
        untrusted_total += untrusted
        again = run(carton, env)
        assert (again.returncode, again.stdout.strip()) == (0, "ok 6"), again.stderr
        assert assert_cache_is_sound(home) == (3, 0)
    report("kill", {"trials": KILLS, "cold_run_seconds": round(cold, 2), **outcomes,
                    "trusted_entries_after_kills": trusted_total,
                    "untrusted_leftovers_after_kills": untrusted_total,
                    "locks_checked_free": locks_checked, "reruns_succeeded": KILLS,
                    "entries_found_corrupt": 0})
