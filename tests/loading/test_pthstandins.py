"""loading/pthstandins.py: coverage's `a1_coverage.pth`, done by carton in the model's
process and in its subprocesses, with a stand-in coverage wheel whose `process_startup`
writes down each call (the real coverage: integration/test_runtime_real.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

# What coverage 7.18's wheel ships, as it is.
PTH = ("import sys; exec('import os\\n\\nif os.getenv(\"COVERAGE_PROCESS_START\") or "
       "os.getenv(\"COVERAGE_PROCESS_CONFIG\"):\\n try:\\n  import coverage\\n except:\\n  "
       "pass\\n else:\\n  coverage.process_startup(slug=\"pth\")')\n")
COVERAGE = """
import os
def process_startup(*, force=False, slug="default"):
    if not (os.environ.get("COVERAGE_PROCESS_START") or os.environ.get("COVERAGE_PROCESS_CONFIG")):
        return None
    with open(os.environ["STARTED"], "a") as f:
        f.write(f"{os.getpid()} {slug}\\n")
    return object()
"""
MODEL = '''
import os, subprocess, sys
def main():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    print("parent", os.getpid())
'''


def coverage_wheel(tmp_path: Path, pypi: PackageIndex, *, pth: bool) -> Path:
    files = {"coverage/__init__.py": COVERAGE, **({"a1_coverage.pth": PTH} if pth else {})}
    return pypi.add(make_wheel(tmp_path / "w", "coverage", "7.18.0", files))


def started(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("variable", ["COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"])
def test_coverage_starts_in_the_model_and_in_each_subprocess_as_its_pth_would(
        variable: str, tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    coverage_wheel(tmp_path, pypi, pth=True)
    carton = build_carton("coverage\n", {"model.py": MODEL})
    log = tmp_path / "started.txt"
    for run in ("cold", "warm"):
        log.unlink(missing_ok=True)
        proc = run_hook({**hermetic_env, variable: "x", "STARTED": str(log)}, carton)
        assert proc.returncode == 0, (run, proc.stderr)
        parent = proc.stdout.split("parent ")[1].strip()
        lines = started(log)
        assert len(lines) == 2 and all(line.endswith(" pth") for line in lines), (run, lines)
        assert f"{parent} pth" in lines, (run, lines, parent)


@pytest.mark.parametrize(("pth", "variables"), [
    (True, {}),  # nothing asks for a measurement
    (False, {"COVERAGE_PROCESS_START": "x"}),  # a coverage without the file: as pip-installed
])
def test_nothing_starts_and_nothing_installs_without_the_file_or_the_variables(
        pth: bool, variables: dict[str, str], tmp_path: Path, pypi: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    wheel = coverage_wheel(tmp_path, pypi, pth=pth)
    carton = build_carton("coverage\n", {"model.py": MODEL})
    log = tmp_path / "started.txt"
    pypi.reset_counts()
    proc = run_hook({**hermetic_env, **variables, "STARTED": str(log)}, carton)
    assert proc.returncode == 0, proc.stderr
    assert started(log) == []
    assert f"/files/{wheel.name}" not in pypi.requests, "coverage is not even installed"
