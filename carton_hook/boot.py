"""Boot a loaded carton's finder in one of its subprocesses.

The prefix's `_carton_boot.pth` calls `boot` at start-up: the child gets the parent's
plan, finder and isolation. It imports only the standard library and this package.
"""

from __future__ import annotations

import sys

from . import workerclient


def boot(plan_file: str, worker_python: str) -> None:
    """Activate the plan at `plan_file`. On failure, say why and exit at once: a child
    that ran on without its locked packages would fail later and less clearly."""
    from .api import SYSTEM_SITE_ENV, activate
    from .errors import CartonError
    from .paths import env_flag
    from .plan import read_plan

    workerclient.WORKER_PYTHON = worker_python
    plan = read_plan(plan_file)
    if plan is None:
        print(f"carton: error: {sys.executable}: the plan {plan_file} of this carton's "
              "environment is gone; run the carton again to restore it", file=sys.stderr)
        raise SystemExit(1)
    try:
        activate(plan, system_site_packages=env_flag(SYSTEM_SITE_ENV))
    except CartonError as exc:
        print(f"carton: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
