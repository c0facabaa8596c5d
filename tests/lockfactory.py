"""Locks written directly, section by section, for the tests of selection and of the plan:
no resolver, no index, no archive. The wheels are named, never fetched."""

from __future__ import annotations

import sys
from pathlib import Path

from carton_hook.formats.lockfile import Environment, Lock, Package, Wheel, dump_lock

HERE = f"sys_platform == '{sys.platform}'"
ELSEWHERE = "sys_platform == 'plan9'"


def locked_package(name: str, imports: tuple[str, ...], deps: tuple[str, ...] = (),
                   tag: str = "py3-none-any") -> Package:
    sha = (name * 64)[:64].encode().hex()[:64]
    return Package(name, "1.0", Wheel(f"{name}-1.0-{tag}.whl", sha, 100,
                                      url=f"https://files.example/{name}-1.0-{tag}.whl"),
                   requested=True, dependencies=deps, imports=imports)


def model_folder(tmp_path: Path, *sections: Environment) -> Path:
    folder = tmp_path / "model"
    (folder / ".carton").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "m"\nversion = "1.0"\n[tool.carton]\nentrypoint = "model:main"\n')
    (folder / "model.py").write_text("def main():\n    pass\n")
    lock = Lock("requirements.txt", "0" * 64, tuple(sections), created_by="test")
    (folder / ".carton" / "carton.lock").write_bytes(dump_lock(lock))
    return folder


def lock_section(env_id: str, marker: str, *packages: Package) -> Environment:
    return Environment(env_id, marker, {"sys_platform": sys.platform}, tuple(packages))


ALPHA = locked_package("alpha", ("alpha",), deps=("beta",))
BETA = locked_package("beta", ("beta",))
