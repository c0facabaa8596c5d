"""Against the real index: PyPI wheels recorded by URL, an sdist built and bundled, a
local non-PyPI wheel bundled, and real frontends with build isolation."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from carton_hook.formats.archive import read_archive

from .conftest import carton

PYPI_FILES = "https://files.pythonhosted.org/"
TORCH = sorted(Path("/opt/wheels").glob("torch-2.13.0+cpu-*.whl"))


def write_model(folder: Path, requirements: str, extra: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["carton-backend"]\nbuild-backend = "carton_backend"\n\n'
        '[project]\nname = "real-model"\nversion = "1.0"\n\n'
        f'[tool.carton]\nentrypoint = "model:main"\n{extra}')
    (folder / "requirements.txt").write_text(requirements)
    (folder / "model.py").write_text("def main():\n    return 0\n")
    return folder


def packages(model: Path) -> dict[str, dict[str, Any]]:
    lock = json.loads((model / ".carton" / "carton.lock").read_text())
    return {p["name"]: p for p in lock["environments"][0]["packages"]}


def test_numpy_and_requests_get_pypi_urls(tmp_path: Path, real_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "m", "numpy\nrequests\n")
    proc = carton(real_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    pkgs = packages(model)
    assert {"numpy", "requests", "urllib3", "idna", "certifi", "charset-normalizer"} <= set(pkgs)
    for name, pkg in pkgs.items():
        (wheel,) = pkg["wheels"]
        assert wheel["url"].startswith(PYPI_FILES), (name, wheel)
        assert "path" not in wheel
    assert pkgs["numpy"]["tool"]["carton"]["imports"] == ["numpy"]
    assert sorted(pkgs["requests"]["dependencies"]) == [
        "certifi", "charset-normalizer", "idna", "urllib3"]
    read_archive(model / "dist" / "real_model-1.0.carton")


def test_docopt_sdist_is_built_and_bundled_reproducibly(tmp_path: Path,
                                                        real_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "m", "docopt==0.6.2\n")
    proc = carton(real_env, "lock", model)
    assert proc.returncode == 0, proc.stderr
    pkg = packages(model)["docopt"]
    (wheel,) = pkg["wheels"]
    assert wheel["name"] == "docopt-0.6.2-py2.py3-none-any.whl"
    assert wheel["path"] == f".carton/bundled_wheels/{wheel['hashes']['sha256']}/{wheel['name']}"
    sdist = pkg["tool"]["carton"]["built-from"]["sdist"]
    assert sdist["name"] == "docopt-0.6.2.tar.gz"
    assert sdist["hashes"]["sha256"] == \
        "49b3a825280bd66b3aa83585ef59c4a8c82f2c8a522dbe754a8bc8d08c85c491"
    shutil.rmtree(model / ".carton")
    assert carton(real_env, "lock", model).returncode == 0
    assert packages(model)["docopt"]["wheels"][0]["hashes"] == wheel["hashes"]


@pytest.mark.skipif(not TORCH or sys.version_info[:2] != (3, 11),
                    reason="needs the local torch 2.13.0+cpu wheel for CPython 3.11")
def test_local_torch_wheel_is_bundled(tmp_path: Path, real_env: dict[str, str]) -> None:
    model = write_model(tmp_path / "m", "torch==2.13.0+cpu\n")
    proc = carton(real_env, "lock", model)
    assert proc.returncode == 0, proc.stderr
    pkgs = packages(model)
    (wheel,) = pkgs["torch"]["wheels"]
    assert wheel["path"].endswith(TORCH[0].name)
    assert wheel["hashes"]["sha256"] == hashlib.sha256(TORCH[0].read_bytes()).hexdigest()
    assert "torch" in pkgs["torch"]["tool"]["carton"]["imports"]
    others = [p for n, p in pkgs.items() if n != "torch"]
    assert others and all(p["wheels"][0].get("url", "").startswith(PYPI_FILES) for p in others)


def test_python_m_build_with_isolation(tmp_path: Path, real_env: dict[str, str],
                                       wheelhouse: Path) -> None:
    model = write_model(tmp_path / "m", "six==1.16.0\n")
    env = {**real_env, "PIP_FIND_LINKS": " ".join(
        filter(None, [str(wheelhouse), os.environ.get("PIP_FIND_LINKS", "")]))}
    proc = subprocess.run([sys.executable, "-m", "build", str(model)], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dist = model / "dist"
    assert sorted(p.suffix for p in dist.iterdir()) == [".carton", ".gz", ".whl"]
    info, manifest = read_archive(dist / "real_model-1.0.carton")
    assert info.entrypoint == "model:main"
    assert "model/.carton/carton.lock" in manifest
    with zipfile.ZipFile(dist / "real_model-1.0-py3-none-any.whl") as zf:
        assert "model.py" in zf.namelist()


def test_pip_wheel_with_isolation(tmp_path: Path, real_env: dict[str, str],
                                  wheelhouse: Path) -> None:
    model = write_model(tmp_path / "m", "six==1.16.0\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--find-links",
                           str(wheelhouse), "--wheel-dir", str(tmp_path / "out"), str(model)],
                          env=real_env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["real_model-1.0-py3-none-any.whl"]
    assert packages(model)["six"]["wheels"][0]["url"].startswith(PYPI_FILES)
    # In an isolated build too, pip's environment says pip is the frontend.
    assert (model / "dist" / "real_model-1.0.carton").is_file()
