"""carton_hook/loading/listing.py: whether a locked top-level name is a package, from its
wheel's pack-time RECORD (a tree, or the metadata pack of an extracted .carton), read
when first asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from carton_hook.errors import CacheError
from carton_hook.loading.listing import is_package, top_level_folders
from carton_hook.planning.models import open_model
from carton_hook.planning.select import make_plan

from ..factory import pack_metadata_tree
from ..lockfactory import HERE, lock_section, locked_package, model_folder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData

BOTH = locked_package("both", ("alpha", "beta_mod", "gamma", "delta"))


def planned(tmp_path: Path, rows: list[str], packed: bool) -> PlanData:
    """The plan of a model whose one wheel provides alpha, beta_mod, gamma and delta,
    and whose RECORD has `rows`; its metadata in a tree, or moved into a pack."""
    folder = model_folder(tmp_path, lock_section("here", HERE, BOTH))
    info = folder / ".carton" / "dist-info" / BOTH.wheel.sha256 / "both-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "RECORD").write_text("\n".join([*rows, "both-1.0.dist-info/RECORD,,"]) + "\n")
    plan = make_plan(open_model(folder, tmp_path / "home"))
    if packed:
        plan["metadata_pack"] = pack_metadata_tree(folder)
    return plan


@pytest.mark.parametrize("packed", [False, True], ids=["tree", "packed"])
@pytest.mark.parametrize("quoted", [False, True])
def test_a_name_is_a_package_where_its_wheel_s_record_has_its_folder(
        tmp_path: Path, packed: bool, quoted: bool) -> None:
    """A RECORD row whose path holds a comma is quoted, and read as CSV; `.data/purelib`
    lands at the root; the dist-info folder is no package."""
    gamma = '"gamma/odd,name.py"' if quoted else "gamma/plain.py"
    plan = planned(tmp_path, ["alpha/__init__.py,sha256=AAAA,1", "beta_mod.py,sha256=BBBB,2",
                              f"{gamma},sha256=CCCC,3",
                              "both-1.0.data/purelib/delta/__init__.py,sha256=DDDD,4"], packed)
    assert plan["listed"] == {"alpha": None, "beta_mod": None, "delta": None, "gamma": None}
    answers = {name: is_package(plan, name) for name in ("alpha", "beta_mod", "gamma", "delta")}
    assert answers == {"alpha": True, "beta_mod": False, "gamma": True, "delta": True}
    assert plan["listed"] == answers  # kept: the RECORD is read once per process
    assert top_level_folders(plan["wheels"][BOTH.wheel.sha256],
                             plan["metadata_pack"]) == {"alpha", "gamma", "delta"}


def test_each_name_is_read_once_and_a_known_answer_is_not_read_again(tmp_path: Path) -> None:
    plan = planned(tmp_path, ["alpha/__init__.py,sha256=AAAA,1"], packed=False)
    assert is_package(plan, "alpha") is True
    record = next(Path(plan["model"]).glob(".carton/dist-info/*/*/RECORD"))
    record.unlink()
    assert is_package(plan, "alpha") is True  # not read again
    assert is_package(plan, "beta_mod") is False  # no RECORD left: no folders


def test_a_wheel_without_metadata_provides_no_package(tmp_path: Path) -> None:
    plan = planned(tmp_path, ["alpha/__init__.py,sha256=AAAA,1"], packed=False)
    plan["wheels"][BOTH.wheel.sha256]["dist_info"] = None
    assert is_package(plan, "alpha") is False


def test_a_name_the_plan_does_not_provide_is_no_package(tmp_path: Path) -> None:
    plan = planned(tmp_path, ["alpha/__init__.py,sha256=AAAA,1"], packed=False)
    assert is_package(plan, "nowhere") is False


def test_a_damaged_pack_is_said_not_taken_for_no_package(tmp_path: Path) -> None:
    plan = planned(tmp_path, ["alpha/__init__.py,sha256=AAAA,1"], packed=True)
    pack = Path(str(plan["metadata_pack"]))
    pack.write_bytes(pack.read_bytes()[:-25])
    with pytest.raises(CacheError, match="damaged"):
        is_package(plan, "alpha")
