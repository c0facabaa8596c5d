"""The exported pylock.toml installs with the real pip (26.1 or newer) and uv, from the
real index: exactly the locked files, the bundled wheel from its relative path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factory import make_wheel, write_model

from .conftest import carton, once


def venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin" / "python"


def installed(python: Path, env: dict[str, str]) -> dict[str, str]:
    proc = subprocess.run([str(python), "-m", "pip", "list", "--format=json",
                           "--disable-pip-version-check"], env=env, capture_output=True,
                          text=True, check=True)
    return {p["name"].lower(): p["version"] for p in json.loads(proc.stdout)}


@pytest.fixture
def model(tmp_path: Path, real_env: dict[str, str]) -> Path:
    local = make_wheel(tmp_path / "wheels", "localpkg", "1.0", {"localpkg.py": "X = 1\n"})
    folder = write_model(tmp_path / "m", f"six==1.16.0\nidna==3.7\n{local}\n")
    proc = carton(real_env, "export-pylock", folder)
    assert proc.returncode == 0, proc.stderr
    return folder


EXPECTED = {"six": "1.16.0", "idna": "3.7", "localpkg": "1.0"}


@once
def test_pip_installs_the_exported_pylock(tmp_path: Path, model: Path,
                                          real_env: dict[str, str]) -> None:
    python = venv(tmp_path / "pip-venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "pip>=26.1"], env=real_env,
                   check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-r", "pylock.toml"],
                          cwd=model, env=real_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    got = installed(python, real_env)
    assert {k: got.get(k) for k in EXPECTED} == EXPECTED
    assert set(got) - set(EXPECTED) <= {"pip", "setuptools"}


@once
def test_uv_installs_the_exported_pylock(tmp_path: Path, model: Path,
                                         real_env: dict[str, str]) -> None:
    tools = venv(tmp_path / "tools")
    subprocess.run([str(tools), "-m", "pip", "install", "-q", "uv"], env=real_env, check=True)
    python = venv(tmp_path / "uv-venv")
    proc = subprocess.run([str(tools.parent / "uv"), "pip", "install", "--python", str(python),
                           "-r", "pylock.toml"], cwd=model, env=real_env, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    got = installed(python, real_env)
    assert {k: got.get(k) for k in EXPECTED} == EXPECTED
    assert set(got) - set(EXPECTED) <= {"pip", "setuptools"}
