"""Pack at load time: when the lock has no section for this interpreter, add one by
running the build half as a subprocess (the runtime never imports it), then load.

A model folder is locked in place. A `.carton` (or unpacked carton) cannot change, so
its model folder is copied, bundled wheels included, to `models/packed-<key>/` and
locked there; the carton's plan then points at that folder, so later runs are warm.
`CARTON_NO_PACK=1` or `CARTON_OFFLINE=1` turn this off: the missing section is an error.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from carton_hook import loading
from carton_hook.cache.layout import is_published, models_dir
from carton_hook.errors import ERROR_PREFIX, CartonError, WorkerError
from carton_hook.loading.plan import Plan, get_plan, plan_identity, plan_key, plan_path
from carton_hook.loading.workerclient import run_worker
from carton_hook.log import logger
from carton_hook.planning.planfile import dump_plan

if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData


def pack_for_here(model_path: str, home: str, missing: WorkerError) -> Plan:
    """Lock `model_path` for this interpreter and return its new plan, or raise why not."""
    model = Path(model_path)
    folder_form = (model / "pyproject.toml").is_file() and not (model / "carton.toml").exists()
    target = model if folder_form else Path(models_dir(home), f"packed-{plan_key(model_path)}")
    if not folder_form and not is_published(target):
        run_worker("derive", str(model), str(target))
    python = loading.WORKER_PYTHON
    logger().warning("%s; locking %s for this interpreter now (python -m carton_backend "
                     "lock)", missing, target)
    proc = subprocess.run([python, "-m", "carton_backend", "lock", str(target)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:  # the warning above said what was missing: not again
        lines = proc.stderr.strip().splitlines()
        # The lock's last line is its own one-line error: said again without its prefix.
        reason = lines[-1].removeprefix(ERROR_PREFIX) if lines else ""
        raise CartonError(f"locking {target} for this interpreter failed: "
                          f"{reason or f'exit status {proc.returncode}'}")
    plan = get_plan(str(target), home)
    if target != model:
        # The carton's own plan key now leads to the locked copy.
        copied: PlanData = {**plan.data, "identity": plan_identity(model_path)}
        Path(plan_path(model_path, home)).write_bytes(dump_plan(copied))
        # Its worker (still installing what the model imports) goes with it.
        mine = get_plan(model_path, home)
        mine.background = plan.background
        plan = mine
    return plan
