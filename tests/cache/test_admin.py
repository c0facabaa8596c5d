"""`cache clear` and `cache prune` in a loop beside models that start, import and start
subprocesses: every run must succeed (the cache gives up nothing a run uses, and a run
installs again what was taken out before it held it). The default test run races for a
few seconds; `nox -s stress` for CARTON_RACE_SECONDS (25) with 8 models at a time, and
writes its figures beside CARTON_STRESS_REPORT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..factory import make_wheel
from ..indexserver import PackageIndex

REPORT = os.environ.get("CARTON_STRESS_REPORT")  # read before the fixtures clear CARTON_*
STRESS_SECONDS = float(os.environ.get("CARTON_RACE_SECONDS", "25"))
MODEL = {"model.py": (
    "import subprocess, sys\nimport alpha\n"
    "def main():\n"
    "    child = subprocess.run([sys.executable, '-c', 'import beta; print(beta.B)'],\n"
    "                           capture_output=True, text=True)\n"
    "    print(alpha.VALUE, child.stdout.strip(), child.stderr.strip()[-300:])\n")}


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "VALUE = 'a'\n"}))
    pypi.add(make_wheel(tmp_path / "w", "beta", "1.0", {"beta/__init__.py": "B = 'b'\n"}))
    return build_carton("alpha\nbeta\n", MODEL)


def race(carton: Path, env: dict[str, str], models: int, seconds: float) -> dict[str, Any]:
    hook = [sys.executable, "-m", "carton_hook"]
    stop = time.monotonic() + seconds
    runs: list[tuple[int, str, str]] = []
    admin: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def run_models() -> None:
        while time.monotonic() < stop:
            proc = subprocess.run([*hook, str(carton)], env=env, capture_output=True,
                                  text=True, check=False, timeout=300)
            with lock:
                runs.append((proc.returncode, proc.stdout, proc.stderr))

    def run_admin() -> None:
        commands = (["cache", "clear"], ["cache", "prune", "--older-than", "0"])
        n = 0
        while time.monotonic() < stop:
            command = commands[n % 2]
            n += 1
            proc = subprocess.run([*hook, "-q", *command], env=env, capture_output=True,
                                  text=True, check=False, timeout=300)
            admin.append((" ".join(command), proc.returncode, proc.stderr))

    threads = [threading.Thread(target=run_models) for _ in range(models)]
    threads.append(threading.Thread(target=run_admin))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [(code, out[-300:], err[-500:]) for code, out, err in runs
              if code != 0 or out != "a b \n"]
    return {"models at a time": models, "seconds": seconds, "runs": len(runs),
            "failed runs": len(failed), "first failures": failed[:3],
            "admin commands": len(admin),
            "admin failures": [a for a in admin if a[1] != 0][:3]}


def test_clear_and_prune_beside_running_models(carton: Path,
                                               hermetic_env: dict[str, str]) -> None:
    figures = race(carton, hermetic_env, models=3, seconds=6)
    assert figures["runs"] >= 3 and figures["admin commands"] >= 2, figures
    assert (figures["failed runs"], figures["admin failures"]) == (0, []), json.dumps(figures)


@pytest.mark.stress
def test_clear_and_prune_beside_many_running_models(carton: Path,
                                                    hermetic_env: dict[str, str]) -> None:
    figures = race(carton, hermetic_env, models=8, seconds=STRESS_SECONDS)
    if REPORT:
        Path(REPORT).with_name("admin-race-report.json").write_text(
            json.dumps(figures, indent=1))
    assert (figures["failed runs"], figures["admin failures"]) == (0, []), json.dumps(figures)
