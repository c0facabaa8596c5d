"""Each example in examples/ is packed from the real index and run, with the runtime
and as an executable carton."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, carton, once

TORCH = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))


def pack_and_run(example: str, tmp_path: Path, env: dict[str, str],
                 *args: str) -> list[str]:
    folder = tmp_path / example
    shutil.copytree(ROOT / "examples" / example, folder,
                    ignore=shutil.ignore_patterns(".carton", "dist"))
    proc = carton(env, "pack", folder)
    assert proc.returncode == 0, proc.stderr
    (archive,) = (folder / "dist").glob("*.carton")
    outputs = []
    for argv in ([sys.executable, "-m", "carton_hook", str(archive), *args],
                 [sys.executable, str(archive), *args]):
        run = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.strip())
    return outputs


@once
def test_quickstart(tmp_path: Path, real_env: dict[str, str]) -> None:
    for out in pack_and_run("quickstart", tmp_path, real_env, "1", "2", "3"):
        assert out.endswith(": predict([1.0, 2.0, 3.0]) = [2.5, 4.5, 6.5]"), out


@once
def test_sklearn_model(tmp_path: Path, real_env: dict[str, str]) -> None:
    for out in pack_and_run("sklearn-model", tmp_path, real_env, "7", "2.5"):
        assert out.startswith("scikit-learn ") and out.endswith(
            ": predict([7.0, 2.5]) = other (p=0.999)"), out


@pytest.mark.skipif(not TORCH or sys.version_info[:2] != (3, 11),
                    reason="needs the local torch 2.13.0+cpu wheel for CPython 3.11 "
                           "(/opt/wheels on these machines); PyPI has no CPU build")
def test_torch_model(tmp_path: Path, real_env: dict[str, str]) -> None:
    for out in pack_and_run("torch-model", tmp_path, real_env, "3", "4"):
        assert out == "torch 2.13.0+cpu: predict([3.0, 4.0]) = 3.4500", out
