"""Load a carton into the running process: `carton_hook.load(MODEL)`.

    carton = carton_hook.load("model.carton")   # plan, finder, isolation
    main = carton.entrypoint()                   # the entrypoint as a callable
    sys.exit(main())

Loading twice in one process is refused: one interpreter, one set of locked packages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

from .errors import CartonError
from .finder import CartonFinder
from .isolation import isolate
from .paths import carton_home, packages_dir
from .plan import get_plan
from .run import resolve_entrypoint
from .workerclient import BASE_EXECUTABLE, WorkerError, run_worker


@dataclass
class Carton:
    """A loaded carton: its plan, its finder and its model folder."""

    plan: dict[str, Any]
    finder: CartonFinder

    @property
    def name(self) -> str:
        return str(self.plan["name"])

    @property
    def version(self) -> str:
        return str(self.plan["version"])

    @property
    def model_dir(self) -> Path:
        return Path(self.plan["model"])

    @property
    def section(self) -> str:
        return str(self.plan["section"])

    def entrypoint(self) -> Callable[[], Any]:
        """The entrypoint as a callable; its return value is meant as the exit code."""
        return resolve_entrypoint(self.model_dir, str(self.plan["entrypoint"]))


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def load(model: str | os.PathLike[str], *, system_site_packages: bool | None = None) -> Carton:
    """Make `model`'s locked packages importable in this process, isolated from the
    interpreter's own site-packages unless `system_site_packages` (or
    `CARTON_SYSTEM_SITE_PACKAGES=1`) lets them through as a fallback."""
    if any(isinstance(f, CartonFinder) for f in sys.meta_path):
        raise CartonError("a carton is already loaded in this process")
    if system_site_packages is None:
        system_site_packages = _flag("CARTON_SYSTEM_SITE_PACKAGES")
    home = carton_home()
    path = Path(model).resolve()
    try:
        plan = get_plan(path, home)
    except WorkerError as exc:
        if exc.kind == "no-environment":
            raise CartonError(f"{exc}") from None
        raise
    plan_file = plan["_file"]

    def install(shas: list[str]) -> None:
        if shas:
            run_worker("install", plan_file, BASE_EXECUTABLE, *shas)

    finder = CartonFinder(plan, packages_dir(home), install)
    position = next((i for i, f in enumerate(sys.meta_path) if f is PathFinder),
                    len(sys.meta_path))
    sys.meta_path.insert(position, finder)
    isolate(str(plan["model"]), plan["stdlib"], fallback=system_site_packages)
    return Carton(plan, finder)
