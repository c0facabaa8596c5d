"""Shared fixtures: loopback indexes, a hermetic pip environment, and a CLI runner."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .faultserver import FaultServer, fault_server
from .indexserver import PackageIndex


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultServer]:
    """A loopback https server (tests/faultserver.py) whose CA is CARTON_CA_BUNDLE."""
    with fault_server(tmp_path / "tls") as server:
        assert server.ca_file is not None
        monkeypatch.setenv("CARTON_CA_BUNDLE", str(server.ca_file))
        yield server


@pytest.fixture
def pypi(tmp_path: Path) -> Iterator[PackageIndex]:
    """Stands in for the public index; answers HTML only, like the one these machines see."""
    index = PackageIndex(tmp_path / "pypi-root", json=False).start()
    yield index
    index.stop()


@pytest.fixture
def private(tmp_path: Path) -> Iterator[PackageIndex]:
    """A private index (PEP 691 JSON): its files are not on the public one."""
    index = PackageIndex(tmp_path / "private-root", json=True).start()
    yield index
    index.stop()


@pytest.fixture
def hermetic_env(tmp_path: Path, pypi: PackageIndex, private: PackageIndex) -> dict[str, str]:
    """An environment in which pip sees only the two loopback indexes and carton checks
    "on PyPI" against `pypi`; the carton and pip caches are private to the test."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "CARTON_", "SOURCE_DATE_EPOCH"))}
    env.update({
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": private.url,
        "PIP_EXTRA_INDEX_URL": pypi.url,
        "PIP_CACHE_DIR": str(tmp_path / "pip-cache"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "CARTON_PYPI_URL": pypi.url,
        "CARTON_HOME": str(tmp_path / "carton-home"),
        # A first run that waits over a second writes progress lines into its stderr
        # (progress.py); tests that read stderr see carton's own messages only, on a
        # machine of any speed. test_progress asks for them.
        "CARTON_PROGRESS_AFTER": "3600",
    })
    return env


@pytest.fixture
def use_hermetic_env(hermetic_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The same environment, applied to this process (for in-process calls)."""
    for key in [k for k in os.environ if k not in hermetic_env]:
        monkeypatch.delenv(key)
    for key, value in hermetic_env.items():
        monkeypatch.setenv(key, value)


def runnable_python(version: str) -> bool:
    """True if `python{version}` is on PATH and really runs (pyenv shims may not)."""
    exe = shutil.which(f"python{version}")
    if exe is None:
        return False
    proc = subprocess.run([exe, "-c", "pass"], capture_output=True, check=False)
    return proc.returncode == 0


def run_cli(env: dict[str, str], *args: str | os.PathLike[str],
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m carton_backend ARGS` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "carton_backend", *map(str, args)],
                          env=env, cwd=cwd, capture_output=True, text=True, check=False)


def run_hook(env: dict[str, str], *args: str | os.PathLike[str],
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m carton_hook ARGS` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "carton_hook", *map(str, args)],
                          env=env, cwd=cwd, capture_output=True, text=True, check=False)


def ctrl_c_as_in_a_terminal() -> None:
    """For `preexec_fn`: SIGINT back to its default in the child, so that Python raises
    KeyboardInterrupt on it as it does in a terminal. A shell without job control starts
    a background command with SIGINT ignored, and Python keeps that: a test runner started
    so would see Ctrl-C ignored."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


class LockStore:
    """The `.carton` folders (lock, metadata, bundled wheels) of the models this process
    has locked, by everything a lock depends on: pyproject.toml, requirements.txt, each
    index's files and what it says of them, and the environment pip and carton read.

    Many tests lock the same requirements against the same wheels (each case of a
    parametrized test builds its carton anew): resolving with pip is most of a build's
    time. A model folder that gets a stored `.carton` (its index URLs made this test's)
    has a current lock, so `lock_model` takes its fast path, as a second build does; the
    carton is packed as always. Requirements that name paths or URLs are locked anew."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def key(self, folder: Path, indexes: dict[str, PackageIndex]) -> str | None:
        requirements = (folder / "requirements.txt").read_text()
        if any(c in requirements for c in "/\\:@") or "-" in "".join(
                line.lstrip()[:1] for line in requirements.splitlines()):
            return None
        env = {k: v for k, v in os.environ.items()
               if k.upper().startswith(("PIP_", "CARTON_", "PATH")) or k.upper().endswith("_PROXY")}
        for own in ("PIP_CACHE_DIR", "CARTON_HOME"):  # this test's own folders
            env.pop(own, None)
        served = {role: [index.json, sorted(index.wrong_hashes.items()), sorted(index.yanked),
                         [(f.name, hashlib.sha256(f.read_bytes()).hexdigest())
                          for f in sorted(index.files_dir.iterdir())]]
                  for role, index in indexes.items()}
        text = self._generic(json.dumps([sys.executable, (folder / "pyproject.toml").read_text(),
                                         requirements, sorted(env.items()), served]), indexes)
        return hashlib.sha256(text.encode()).hexdigest()

    def fetch(self, key: str, folder: Path, indexes: dict[str, PackageIndex]) -> bool:
        stored = self.root / key
        if not stored.is_dir():
            return False
        shutil.copytree(stored, folder / ".carton")
        lock = folder / ".carton" / "carton.lock"
        text = lock.read_text()
        for role, index in indexes.items():
            text = text.replace(f"{{{role}}}", f"127.0.0.1:{index.port}/")
        lock.write_text(text)
        return True

    def keep(self, key: str, folder: Path, indexes: dict[str, PackageIndex]) -> None:
        work = self.root / f".{key}"
        shutil.copytree(folder / ".carton", work)
        lock = work / "carton.lock"
        lock.write_text(self._generic(lock.read_text(), indexes))
        work.rename(self.root / key)

    @staticmethod
    def _generic(text: str, indexes: dict[str, PackageIndex]) -> str:
        """`text` with each index's address replaced by its role."""
        return re.sub(r"127\.0\.0\.1:(\d+)/", lambda m: next(
            (f"{{{role}}}" for role, index in indexes.items() if index.port == int(m[1])),
            m[0]), text)


@pytest.fixture(scope="session")
def lock_store(tmp_path_factory: pytest.TempPathFactory) -> LockStore:
    return LockStore(tmp_path_factory.mktemp("locks"))


@pytest.fixture
def build_carton(tmp_path: Path, use_hermetic_env: None, pypi: PackageIndex,
                 private: PackageIndex, lock_store: LockStore) -> Callable[..., Path]:
    """Lock and pack a model folder in-process; returns the `.carton` path."""
    from carton_backend.config import load_config
    from carton_backend.lock.locking import lock_model
    from carton_backend.packing.pack import write_carton

    from .factory import write_model

    indexes = {"pypi": pypi, "private": private}

    def build(requirements: str, files: dict[str, str] | None = None, *,
              entrypoint: str = "model:main", name: str = "demo-model",
              settings: str = "", project: str = "") -> Path:
        folder = write_model(tmp_path / "models" / name, requirements, name=name,
                             carton=f'entrypoint = "{entrypoint}"\n{settings}', files=files,
                             project=project)
        key = None if (folder / ".carton").exists() else lock_store.key(folder, indexes)
        stored = key is not None and lock_store.fetch(key, folder, indexes)
        config = load_config(folder)
        carton = write_carton(config, lock_model(config), tmp_path / "dist")
        if key is not None and not stored:
            lock_store.keep(key, folder, indexes)
        return carton

    return build


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv without pip: this interpreter's standard library and nothing else."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    return folder / "bin" / "python"


@pytest.fixture
def any_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test downloads are written in a few large parts, as fast as the disk goes: staged
    all the same, as a download over a network is (`staging.FAST` off)."""
    from carton_hook.installing import staging

    monkeypatch.setattr(staging, "FAST", float("inf"))
