"""The README's quick start, run as written: its first command builds and runs the
example; its second is what CI runs (`.ci/run` ends with it), so it is not run again here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, once


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.DOTALL)
    assert block, "README.md: the quick start has no code block"
    return [line.split("#", 1)[0].strip() for line in block[1].splitlines() if line.strip()]


def test_the_quick_start_has_two_commands_and_ci_runs_the_second() -> None:
    build_and_run, tests = quick_start_commands()
    assert build_and_run == "nox -s quickstart"
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == tests


@once
def test_the_first_command_builds_and_runs_the_example(tmp_path: Path,
                                                       real_env: dict[str, str]) -> None:
    # In a copy of the repository, as a new user's clone (no .nox, no dist, no lock).
    clone = tmp_path / "carton"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(
        ".nox", ".git", "dist", "build", ".carton", "__pycache__", "*.egg-info", ".*_cache"))
    command = quick_start_commands()[0].split()
    assert command[0] == "nox"
    proc = subprocess.run([sys.executable, "-m", "nox", *command[1:]], cwd=clone,
                          env=real_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"numpy \S+: predict\(\[1\.0, 2\.0, 3\.0\]\) = \[2\.5, 4\.5, 6\.5\]",
                     proc.stdout + proc.stderr), proc.stderr[-2000:]
