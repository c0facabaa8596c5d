"""The docs' snippets that a model project copies into its own checks, run as written:
the nox session and the tox environment of docs/cli.md's check-reproducible, in a copy of
the example model, with carton-backend's wheel where the README's "Building" section puts
it (`~/wheelhouse`; HOME is a temporary folder here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, once

EXAMPLE = ROOT / "examples" / "quickstart"


def snippet(language: str) -> str:
    """The `language` code block of check-reproducible's "In a model project's own
    checks" paragraph in docs/cli.md."""
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("**In a model project's own checks.**", 1)[1]
    block = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert block, f"docs/cli.md: no {language} block under check-reproducible"
    return block[1]


@pytest.fixture
def project(tmp_path: Path, wheelhouse: Path, real_env: dict[str, str]) -> tuple[Path, dict]:
    """A copy of the example model, and an environment whose HOME holds the wheelhouse."""
    folder = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".carton", "dist"))
    home = tmp_path / "home"
    shutil.copytree(wheelhouse, home / "wheelhouse")
    env = {k: v for k, v in real_env.items() if k not in ("PIP_FIND_LINKS", "VIRTUAL_ENV")}
    return folder, {**env, "HOME": str(home)}


@once
def test_the_nox_session_runs_as_written(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    (folder / "noxfile.py").write_text(snippet("python"))
    proc = subprocess.run([sys.executable, "-m", "nox", "-s", "reproducible"], cwd=folder,
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "reproducible: two builds of " in proc.stdout + proc.stderr, proc.stderr[-2000:]


@once
def test_the_tox_environment_runs_as_written(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    (folder / "tox.toml").write_text(snippet("toml"))
    proc = subprocess.run([sys.executable, "-m", "tox", "-e", "reproducible"], cwd=folder,
                          env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "reproducible: two builds of " in proc.stdout + proc.stderr, proc.stdout[-2000:]
