"""The docs' snippets that a model project copies into its own checks, run as written:
the nox session and the tox environment of docs/cli.md's check-reproducible, in a copy of
the example model, with carton-backend's wheel where the README's "Building" section puts
it (`~/wheelhouse`; HOME is a temporary folder here)."""

from __future__ import annotations

import os
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


# Each snippet: its code block's language, the file a project writes it into, the command
# that runs it.
SNIPPETS = {
    "nox": ("python", "noxfile.py", ["-m", "nox", "-s", "reproducible"]),
    "tox": ("toml", "tox.toml", ["-m", "tox", "-e", "reproducible"]),
}


@once
@pytest.mark.parametrize("tool", sorted(SNIPPETS))
def test_the_snippet_runs_as_written(project: tuple[Path, dict[str, str]], tool: str) -> None:
    folder, env = project
    language, filename, command = SNIPPETS[tool]
    (folder / filename).write_text(snippet(language))
    proc = subprocess.run([sys.executable, *command], cwd=folder, env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "reproducible: two builds of " in proc.stdout + proc.stderr, proc.stdout[-2000:]


@once
def test_the_readmes_building_commands_run_as_written(tmp_path: Path,
                                                      real_env: dict[str, str]) -> None:
    """README.md, "Building": carton-backend's wheel into ~/wheelhouse, then an isolated
    `python -m build` of a model folder that finds it there. The placeholders are this
    repository (a copy, as a clone) and a copy of the example model."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```\n(.*?)```", text.split("## Building", 1)[1], re.DOTALL)
    assert block, "README.md: Building has no code block"
    commands = [line.split("  #", 1)[0].strip() for line in block[1].splitlines()
                if line.strip()]
    assert len(commands) == 3 and "/path/to/carton" in commands[1], commands
    clone = tmp_path / "carton"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(
        ".nox", ".git", "dist", "build", ".carton", "__pycache__", "*.egg-info", ".*_cache"))
    shutil.copytree(EXAMPLE, tmp_path / "my-model",
                    ignore=shutil.ignore_patterns(".carton", "dist"))
    env = {k: v for k, v in real_env.items() if k != "PIP_FIND_LINKS"}
    env["HOME"] = str(tmp_path / "home")
    # `python` is the one running these tests (the session's), as on a user's PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for command in commands:
        proc = subprocess.run(["bash", "-c", command.replace("/path/to/carton", str(clone))],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, (command, proc.stdout[-2000:], proc.stderr[-2000:])
    assert sorted(p.name for p in (tmp_path / "my-model" / "dist").iterdir()) == [
        "quickstart-0.1.0-py3-none-any.whl", "quickstart-0.1.0.carton",
        "quickstart-0.1.0.tar.gz"]
