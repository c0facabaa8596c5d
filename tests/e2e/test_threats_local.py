"""Local faults through the public path (THREATS A4, C4, C5): `python -m carton_hook`
runs a model whose import installs a wheel, while a `sitecustomize` on `PYTHONPATH`
injects the fault into the processes it starts (the worker installs there)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import ALPHA_MODEL, make_wheel
from ..indexserver import PackageIndex


@pytest.fixture
def carton(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", files={
        "alpha/__init__.py": "VALUE = 'alpha 1.0'\n", "alpha/more.py": "X = 1\n"}))
    return build_carton("alpha\n", {"model.py": ALPHA_MODEL})


# The replacements are instances of a class, not functions: Python 3.10's pathlib keeps
# os functions as class attributes, and a function there would be bound as a method.
def run_with(tmp_path: Path, env: dict[str, str], carton: Path, fault: str) -> str:
    folder = tmp_path / "inject"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(fault)
    proc = run_hook({**env, "PYTHONPATH": str(folder)}, carton)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def entries(env: dict[str, str]) -> list[Path]:
    return list(Path(env["CARTON_HOME"]).glob("pythonpackages/*/[0-9a-f]*"))


def work_folders(env: dict[str, str]) -> list[Path]:
    return list(Path(env["CARTON_HOME"]).glob("pythonpackages/*/.tmp/*"))


def test_a_link_planted_while_unpacking_is_never_written_through(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    """A4: the moment the package folder is made, a link to a file outside appears in it."""
    target = tmp_path / "outside.py"
    target.write_text("untouched\n")
    fault = f"""
import os, pathlib
_mkdir = os.mkdir
def mkdir(path, *args, **kwargs):
    _mkdir(path, *args, **kwargs)
    self = pathlib.Path(path)
    if self.name == 'alpha' and '.tmp' in self.parts and not (self / '__init__.py').exists():
        (self / '__init__.py').symlink_to({str(target)!r})
os.mkdir = mkdir
"""
    out = run_with(tmp_path, hermetic_env, carton, fault)
    assert out.startswith("CartonImportError | cannot import alpha"), out
    assert target.read_text() == "untouched\n"
    assert entries(hermetic_env) == []


def test_a_busy_rename_is_retried(tmp_path: Path, carton: Path,
                                  hermetic_env: dict[str, str]) -> None:
    """C4: each rename that publishes a content-addressed folder (the extracted model,
    the wheel's cache entry) fails twice with EBUSY, then works."""
    log = tmp_path / "busy.log"
    fault = """
import errno, os, re
_rename, _busy = os.rename, {}
class Rename:
    def __call__(self, src, dst, *args, **kwargs):
        name = os.path.basename(str(dst))
        if re.fullmatch('[0-9a-f]{64}', name) and _busy.setdefault(name, 2):
            _busy[name] -= 1
            with open(BUSY_LOG, "a") as f:
                f.write(os.path.basename(os.path.dirname(str(dst))) + "/" + name + "\\n")
            raise OSError(errno.EBUSY, 'Device or resource busy')
        return _rename(src, dst, *args, **kwargs)
os.rename = Rename()
""".replace("BUSY_LOG", repr(str(log)))
    assert run_with(tmp_path, hermetic_env, carton, fault) == "imported alpha 1.0"
    assert len(entries(hermetic_env)) == 1
    # Each folder was refused twice before it was published: the retries did it.
    busy = log.read_text().splitlines()
    entry = entries(hermetic_env)[0]
    assert busy.count(f"{entry.parent.name}/{entry.name}") == 2, busy
    assert any(line.startswith("models/") for line in busy), busy


def test_a_full_disk_while_unpacking_is_a_clear_error_and_leaves_nothing(
        tmp_path: Path, carton: Path, hermetic_env: dict[str, str]) -> None:
    """C5: writing the unpacked files fails with ENOSPC."""
    fault = """
import errno, os
_open = os.open
class Full:
    def __call__(self, path, flags, *args, **kwargs):
        if '/.tmp/' in str(path) and '/dest/' in str(path) and flags & os.O_CREAT:
            raise OSError(errno.ENOSPC, 'No space left on device', str(path))
        return _open(path, flags, *args, **kwargs)
os.open = Full()
"""
    out = run_with(tmp_path, hermetic_env, carton, fault)
    assert out.startswith("CartonImportError | cannot import alpha"), out
    assert "No space left on device" in out and "CARTON_HOME" in out
    assert entries(hermetic_env) == []
    assert work_folders(hermetic_env) == []


def test_a_read_only_cache_is_a_clear_error(tmp_path: Path, carton: Path,
                                            hermetic_env: dict[str, str]) -> None:
    """C5: the cache's folder cannot be written (a read-only mount, injected: the tests
    may run as root, which ignores modes)."""
    fault = """
import errno, os
_mkdir = os.mkdir
class ReadOnly:
    def __call__(self, path, *args, **kwargs):
        if 'pythonpackages' in str(path):
            raise OSError(errno.EROFS, 'Read-only file system', str(path))
        return _mkdir(path, *args, **kwargs)
os.mkdir = ReadOnly()
"""
    out = run_with(tmp_path, hermetic_env, carton, fault)
    assert out.startswith("CartonImportError | cannot import alpha"), out
    assert "Read-only file system" in out and "writable" in out
