"""The plan: made once by the worker, kept in the cache, read on the warm path; made once
for processes of one model started together."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from ..factory import make_wheel
from ..indexserver import PackageIndex

ROOT_OF_CARTON = str(Path(__file__).resolve().parents[2])

# Logs each worker `plan` command, and makes it slow, so that every process of the crowd
# is started while the first one's plan is still being made.
SLOW_PLAN = textwrap.dedent("""
    import sys, time
    argv = sys.orig_argv
    if "carton_hook.installing.worker" in argv and "plan" in argv:
        with open({log!r}, "a") as f:
            f.write("plan\\n")
        time.sleep(1.5)
""")


def test_processes_started_together_make_the_plan_once(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "V = 'a'\n"}))
    carton = build_carton("alpha\n", {"model.py": "import alpha\ndef main():\n"
                                                  "    print(alpha.V)\n"})
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "plans.log"
    (site / "sitecustomize.py").write_text(SLOW_PLAN.format(log=str(log)))
    # A worker started as an interpreter of its own, which the sitecustomize slows down
    # (a forked one never runs it: test_forkedworker.py has processes started together).
    env = {**hermetic_env, "PYTHONPATH": str(site), "CARTON_NO_FORK": "1"}
    pypi.reset_counts()
    procs = [subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)], env=env,
                              cwd=ROOT_OF_CARTON, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [(p.returncode, out) for p, (out, _) in zip(procs, results, strict=True)] == [
        (0, "a\n")] * 8, [err for _, err in results]
    assert log.read_text() == "plan\n"  # one worker made it; seven read it
    assert sum("/files/" in r for r in pypi.requests) == 1
    plans = Path(hermetic_env["CARTON_HOME"]) / "plans"
    assert len(list(plans.glob("*.plan"))) == 1
    assert not [p for p in os.listdir(plans) if p.startswith(".tmp")]


# `cache clear` run at the worst moment of a first run: right after the model's process
# extracted the archive, before it selects and reads the plan back.
CLEAR_BEFORE_SELECTING = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    import carton_hook
    from carton_hook.cache import admin
    from carton_hook.loading import selection
    select_here = selection.select_here
    def cleared_first(*args):
        admin.clear(Path(os.environ["CARTON_HOME"]))
        return select_here(*args)
    selection.select_here = cleared_first
    c = carton_hook.load(sys.argv[1])
    print(json.dumps(c.entrypoint()()))
""")


def test_a_model_extracted_for_its_plan_is_held_against_cache_clear(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """The extracted model is held (cache/inuse.py) as soon as it is extracted, not
    only once the plan is read: a `cache clear` beside a first run took it out in
    between, and the run gave up after making the plan three times."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "V = 7\n"}))
    carton = build_carton("alpha\n", {"model.py": "def main():\n    import alpha\n"
                                                  "    return alpha.V\n"})
    proc = subprocess.run([sys.executable, "-c", CLEAR_BEFORE_SELECTING, str(carton)],
                          env=hermetic_env, cwd=ROOT_OF_CARTON, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "7"
