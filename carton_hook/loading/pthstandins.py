"""What the start-up code of a locked package's `.pth` file does, for the ones carton
does itself (it never runs a wheel's `.pth` code): coverage's `a1_coverage.pth`, which
starts measuring each Python that starts with `COVERAGE_PROCESS_START` or
`COVERAGE_PROCESS_CONFIG` set. That is how `coverage run` with `patch = subprocess`,
and pytest-cov, follow a model's subprocesses. (setuptools' `distutils-precedence.pth`
is the finder's: loading/finder.py.)

`loading/api.py` calls `start_coverage` in the model's process and in each of its
subprocesses, only when coverage is locked and one of the variables is set.
"""

from __future__ import annotations

from carton_hook.loading.listing import installed_paths

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData

COVERAGE_PTH = "a1_coverage.pth"


def start_coverage(plan: PlanData) -> bool:
    """Start coverage's measurement of this process as its `.pth` file would, if the
    locked coverage ships that file (older ones do not, and then a pip-installed one does
    nothing either); whether it was started. As the file does, a coverage that cannot be
    imported measures nothing."""
    sha = plan["imports"]["coverage"]
    if COVERAGE_PTH not in installed_paths(plan["wheels"][sha], plan.get("metadata_pack")):
        return False
    import importlib

    try:
        coverage = importlib.import_module("coverage")
    except ImportError:
        return False
    startup = coverage.process_startup
    if "slug" in (getattr(startup, "__kwdefaults__", None) or {}):
        return startup(slug="pth") is not None
    return startup() is not None
