"""Environments: which interpreters to lock for, and how a lock section is named and matched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from carton_backend.config import ModelConfig
from carton_backend.errors import BuildError, ConfigError
from carton_backend.resolution.platforms import Platform, parse_platform
from carton_hook.formats.lockfile import Environment, Lock, first_applicable

# The marker keys a section is selected by; the rest of the marker environment is kept
# for audit only (platform_release and the like change with every kernel update).
SELECTING_KEYS = ("sys_platform", "platform_machine", "implementation_name", "python_version")
_IMPLEMENTATION_PREFIX = {"cpython": "cp", "pypy": "pp", "graalpy": "gp"}


@dataclass(frozen=True)
class Target:
    """What to resolve for: the building interpreter, a `[tool.carton] python` version
    found on PATH as `python3.X` (None when it is not there), or, with `platform`, a
    CPython version on another machine, resolved here without running there."""

    python_version: str
    building: bool = False
    executable: str | None = None
    platform: Platform | None = None

    @property
    def label(self) -> str:
        if self.platform is not None:
            return f"Python {self.python_version} on {self.platform.name}"
        where = f" ({self.executable})" if self.executable else ""
        return f"Python {self.python_version}{where}"


def targets(config: ModelConfig, platforms: tuple[str, ...] = (),
            pythons: tuple[str, ...] = ()) -> list[Target]:
    """The building interpreter first, then each `[tool.carton] python` version, then
    each `[tool.carton] platforms` entry with each of those Python versions; then what
    the command line adds for this run: `platforms`, each with `pythons` (or, without
    them, the Python versions above), or, without platforms, `pythons` on this machine.

    An interpreter that is not installed is an error only when its section has to be
    resolved (`check_interpreter`): a complete lock packs without it.
    """
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    out = [Target(here, building=True)]
    local = [*config.python, *(() if platforms else pythons)]
    for version in dict.fromkeys(local):
        if version != here:
            out.append(Target(version, executable=shutil.which(f"python{version}")))
    versions = list(dict.fromkeys([here, *config.python]))
    foreign = [(name, version) for name in config.platforms for version in versions]
    foreign += [(name, version) for name in platforms for version in (pythons or versions)]
    for name, version in dict.fromkeys(foreign):
        out.append(Target(version, platform=parse_platform(name)))
    return out


def check_interpreter(target: Target, config: ModelConfig) -> None:
    """Make sure a target found on PATH really runs and is the version it claims (a pyenv
    shim for a version that is not active is on PATH but fails when run). A foreign
    platform's target needs no interpreter."""
    if target.building or target.platform is not None:
        return
    if target.executable is None:
        raise _not_usable(target, config, f"no python{target.python_version} is on PATH")
    try:
        proc = subprocess.run(
            [target.executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60, check=False)
        works = proc.returncode == 0 and proc.stdout.strip() == target.python_version
    except OSError:
        works = False
    if not works:
        raise _not_usable(target, config, f"{target.executable} does not run as Python "
                                          f"{target.python_version}")


def _not_usable(target: Target, config: ModelConfig, problem: str) -> BuildError:
    """The error for an interpreter `problem` keeps from resolving, naming where it was
    asked for: `[tool.carton] python`, or the command line's `--python`."""
    version = target.python_version
    if version in config.python:
        return ConfigError(str(config.pyproject), "tool.carton.python",
                           f"lists {version}, but {problem}; install Python {version} or "
                           "remove it from the list")
    return BuildError(f"--python {version}: {problem}; install Python {version} or leave "
                      f"--python {version} out")


def env_id(menv: Mapping[str, str], platform: str | None = None) -> str:
    """A readable id such as `cp311-linux-x86_64`, or `cp312-aarch64-apple-darwin` for a
    section locked for a platform by name."""
    impl = menv.get("implementation_name", "")
    prefix = _IMPLEMENTATION_PREFIX.get(impl, impl)
    version = menv.get("python_version", "").replace(".", "")
    if platform is not None:
        return f"{prefix}{version}-{platform}"
    return f"{prefix}{version}-{menv.get('sys_platform', '')}-{menv.get('platform_machine', '')}"


def env_marker(menv: Mapping[str, str]) -> str:
    """The PEP 508 marker a section is selected by."""
    return " and ".join(f"{key} == {_quote(menv.get(key, ''))}" for key in SELECTING_KEYS)


def _quote(value: str) -> str:
    """`value` as a PEP 508 string: its grammar has no escapes, only two quote characters."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise BuildError(f"this interpreter's marker value {value!r} has both quote characters: "
                     "no PEP 508 marker can name it; lock on another interpreter")


def current_marker_environment() -> dict[str, str]:
    """The building interpreter's marker environment."""
    from packaging.markers import default_environment

    return {k: str(v) for k, v in default_environment().items()}


def section_for(lock: Lock, target: Target) -> Environment | None:
    """The section of `lock` made for `target`, if any.

    For a platform, the section locked for that platform name and Python version. For
    the building interpreter, among the sections locked by running an interpreter, the
    section's marker must hold and every wheel must be installable here. For another
    interpreter the marker is evaluated with its Python version; its tags are checked
    when the carton is loaded there.
    """
    if target.platform is not None:
        return next((e for e in lock.environments if e.platform == target.platform.name
                     and e.marker_environment.get("python_version") == target.python_version),
                    None)
    menv = current_marker_environment()
    if not target.building:
        menv["python_version"] = target.python_version
        menv["python_full_version"] = target.python_version + ".0"
    ran = lock._replace(environments=tuple(e for e in lock.environments if e.platform is None))
    return first_applicable(ran, menv, check_tags=target.building)
