"""Boot a loaded carton's finder in one of its subprocesses.

The prefix's `_carton_boot.pth` calls `boot` at start-up: the child gets the parent's
plan, finder and isolation. It imports only the standard library and this package.
"""

from __future__ import annotations

import os
import sys

from carton_hook import loading

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from carton_hook.loading.plan import Plan


def boot(plan_file: str, worker_python: str, model: str | None = None) -> None:
    """Activate the plan at `plan_file`. A plan removed since the parent loaded it (a
    cache cleaned while the model runs) is made again from `model`, as the parent's
    first run made it. On failure, say why and exit at once: a child that ran on
    without its locked packages would fail later and less clearly."""
    from carton_hook.errors import CartonError, report
    from carton_hook.loading.api import SYSTEM_PATH_ENV, SYSTEM_SITE_ENV, activate
    from carton_hook.loading.plan import Plan
    from carton_hook.planning.planfile import read_plan
    from carton_hook.switches import env_flag

    loading.WORKER_PYTHON = worker_python
    home = _home_of(plan_file)
    if os.environ.get("CARTON_HOME") != home:
        # A child started with an environment of its own (`env={}`, another HOME) uses
        # the cache its parent loaded the plan from, and so do the workers and the
        # children it starts: a cache of its own would download again, or fail offline.
        os.environ["CARTON_HOME"] = home
    data = read_plan(plan_file)
    plan = Plan(data, plan_file) if data is not None else _remake(plan_file, model or None)
    if plan is None:
        raise SystemExit(report(f"{sys.executable}: the plan {plan_file} of this carton's "
                                f"environment is gone and {model or 'its model'} no longer "
                                "gives the same one; run the carton again"))
    fallback = env_flag(SYSTEM_SITE_ENV)
    try:
        activate(plan, system_site_packages=fallback)
    except CartonError as exc:
        raise SystemExit(report(exc)) from None
    if fallback:  # and what the parent let through, which this prefix's python lacks
        sys.path.extend(p for p in os.environ.get(SYSTEM_PATH_ENV, "").split(os.pathsep)
                        if p and p not in sys.path)
    if env_flag("CARTON_INTERPRETER"):
        from carton_hook.loading.interpreter import keep_pythonpath

        keep_pythonpath()  # a worker of an engine that runs the carton as its Python


def _remake(plan_file: str, model: str | None) -> Plan | None:
    """The plan of `model`, made again, if it is the very plan the parent used (same
    key: same model file, same stat, same interpreter); None otherwise."""
    from carton_hook.errors import CartonError
    from carton_hook.loading.plan import get_plan

    if not model:
        return None
    try:
        plan = get_plan(model, _home_of(plan_file))
    except (CartonError, OSError):
        return None
    return plan if plan.file == plan_file else None


def _home_of(plan_file: str) -> str:
    return os.path.dirname(os.path.dirname(plan_file))  # $CARTON_HOME/plans/<key>.plan
