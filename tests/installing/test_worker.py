"""The worker's installs: a first run's big wheels shared with a second process."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.installing import worker

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

MB = 1_000_000


def plan_of(sizes: dict[str, int]) -> dict[str, object]:
    return {"wheels": {sha: {"size": size} for sha, size in sizes.items()}}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the split needs a second core")
def test_the_second_share_is_about_half_of_the_bytes() -> None:
    plan = plan_of({"a": 30 * MB, "b": 20 * MB, "c": 12 * MB, "d": 1 * MB})
    theirs = worker._second_share(plan, ["d", "c", "b", "a"])
    assert theirs == ["c", "b"]  # 32 MB beside 31 MB, in the order they are needed
    assert worker._second_share(plan, ["a"]) == []  # nothing to share
    small = plan_of({"a": 5 * MB, "b": 5 * MB})
    assert worker._second_share(small, ["a", "b"]) == []  # not worth a process


# Logs each worker command the run starts.
LOG_WORKERS = textwrap.dedent("""
    import sys
    argv = sys.orig_argv
    if "carton_hook.installing.worker" in argv:
        with open({log!r}, "a") as f:
            f.write(argv[argv.index("carton_hook.installing.worker") + 1] + "\\n")
""")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the split needs a second core")
def test_a_first_run_shares_big_wheels_with_a_second_process(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    for name in ("big1", "big2", "big3"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0", {
            f"{name}/__init__.py": "NAME = __name__\n", f"{name}/blob.bin": os.urandom(9 * MB)}))
    carton = build_carton("big1\nbig2\nbig3\n", {
        "model.py": "import big1, big2, big3\ndef main():\n"
                    "    print(big1.NAME, big2.NAME, big3.NAME)\n"})
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "workers.log"
    (site / "sitecustomize.py").write_text(LOG_WORKERS.format(log=str(log)))
    pypi.reset_counts()
    proc = run_hook({**hermetic_env, "PYTHONPATH": str(site)}, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "big1 big2 big3\n", "")
    # The plan's worker installed some, a second worker the others (and split no further).
    assert sorted(log.read_text().splitlines()) == ["install", "plan"]
    assert sorted(r for r in pypi.requests if "/files/" in r) == [
        f"/files/{n}-1.0-py3-none-any.whl" for n in ("big1", "big2", "big3")]


# The second worker dies at once, as if killed.
KILL_SECOND = textwrap.dedent("""
    import os, sys
    argv = sys.orig_argv
    worker = "carton_hook.installing.worker"
    if worker in argv and argv[argv.index(worker) + 1] == "install":
        os._exit(9)
""")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the split needs a second core")
def test_what_the_second_worker_did_not_install_the_first_installs(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    for name in ("big1", "big2"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0", {
            f"{name}/__init__.py": "NAME = __name__\n", f"{name}/blob.bin": os.urandom(9 * MB)}))
    carton = build_carton("big1\nbig2\n", {
        "model.py": "import big1, big2\ndef main():\n    print(big1.NAME, big2.NAME)\n"})
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILL_SECOND)
    pypi.reset_counts()
    proc = run_hook({**hermetic_env, "PYTHONPATH": str(site)}, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "big1 big2\n", "")
    assert sorted(r for r in pypi.requests if "/files/" in r) == [
        f"/files/{n}-1.0-py3-none-any.whl" for n in ("big1", "big2")]
