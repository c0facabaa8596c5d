"""carton_hook/planning/planfile.py: a plan file is read back only while it still describes
the model and the interpreter; its key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from carton_hook.planning.models import open_model
from carton_hook.planning.planfile import (
    PLAN_FORMAT,
    closure,
    dump_plan,
    file_key,
    file_signature,
    read_plan,
)
from carton_hook.planning.select import make_plan

from ..lockfactory import ALPHA, BETA, HERE, lock_section, model_folder

if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData


def test_a_plan_file_is_read_back_only_while_it_still_describes_the_model(
        tmp_path: Path) -> None:
    folder = model_folder(tmp_path, lock_section("here", HERE, ALPHA, BETA))
    plan = make_plan(open_model(folder, tmp_path / "home"))
    requirements = folder / "requirements.txt"
    requirements.write_text("alpha\n")
    plan["identity"] = "who"
    plan["watch"] = [[str(requirements), file_signature(str(requirements))]]
    path = tmp_path / "plans" / "x.plan"
    path.parent.mkdir()
    path.write_bytes(dump_plan(plan))
    assert read_plan(str(path), "who") == plan
    assert read_plan(str(path), "someone else") is None  # another model or interpreter
    requirements.write_text("alpha\nbeta\n")  # an edited requirements file
    os.utime(requirements, ns=(1, 1))
    assert read_plan(str(path), "who") is None
    path.write_bytes(dump_plan({**plan, "watch": [], "format": PLAN_FORMAT - 1}))
    assert read_plan(str(path)) is None  # another plan format
    path.write_bytes(b"not marshal")
    assert read_plan(str(path)) is None


def test_a_plan_whose_model_folder_is_gone_is_still_read_for_its_wheels(
        tmp_path: Path) -> None:
    """A cleared model folder makes the plan stale for running the model, not for
    installing its wheels (the worker, told the plan is written, reads it so)."""
    folder = model_folder(tmp_path, lock_section("here", HERE, ALPHA, BETA))
    plan = make_plan(open_model(folder, tmp_path / "home"))
    path = tmp_path / "x.plan"
    path.write_bytes(dump_plan({**plan, "identity": "who"}))
    folder.rename(tmp_path / "moved")
    assert read_plan(str(path), "who") is None
    assert read_plan(str(path), "who", for_installing=True) == {**plan, "identity": "who"}
    assert read_plan(str(path), "someone else", for_installing=True) is None


def test_the_plan_key_covers_the_identity_and_the_format() -> None:
    assert file_key("a") == file_key("a") != file_key("b")
    assert len(file_key("a")) == 16 and int(file_key("a"), 16) >= 0


def test_a_closure_lists_each_wheel_before_its_dependencies_in_the_order_asked() -> None:
    """The worker unpacks a first run's wheels in this order (installing/turns.py): a
    package's `__init__` runs before it imports what it depends on."""
    deps = {"app": ["lib", "util"], "lib": ["core"], "util": ["core"], "core": [],
            "tool": ["util"], "unused": []}
    plan = cast("PlanData", {"wheels": {sha: {"deps": d} for sha, d in deps.items()}})
    assert closure(plan, ["app"]) == ["app", "lib", "core", "util"]
    assert closure(plan, ["tool", "app"]) == ["tool", "util", "core", "app", "lib"]
    assert closure(plan, ["gone", "core"]) == ["core"]  # a wheel not in the plan: none
