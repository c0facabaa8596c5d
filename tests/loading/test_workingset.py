"""loading/workingset.py: pkg_resources' working set sees the locked distributions, their
metadata read from the pack (or a model folder's tree), their files in the cache entry.

Run against the real pkg_resources of this interpreter's setuptools (older than 81, which
dropped it; the tests session installs one); the integration suite locks an older
setuptools from the index."""

from __future__ import annotations

import importlib.metadata
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carton_hook.formats.metadatapack import PACKED_DIR
from carton_hook.loading.workingset import add_locked

from ..conftest import run_hook
from ..factory import make_wheel, pack_metadata_tree
from ..indexserver import PackageIndex

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pkg_resources warns that it is deprecated
    pkg_resources = pytest.importorskip("pkg_resources")

ALPHA, BETA = "a" * 64, "b" * 64


def write_tree(model: Path, sha: str, folder: str, files: dict[str, str]) -> str:
    path = model / PACKED_DIR / sha / folder
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return str(path)


@pytest.fixture(params=["tree", "packed"])
def plan(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    model = tmp_path / "model"
    alpha = write_tree(model, ALPHA, "alpha_unit-1.0.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: alpha-unit\nVersion: 1.0\n"
                    "Requires-Dist: beta>=2\n",
        "entry_points.txt": "[unit.plugins]\nfirst = alpha_unit:plugin\n",
        "RECORD": "alpha_unit/__init__.py,,\n# not a comment in RECORD\n",
        "licenses/LICENSE": "MIT\n"})
    beta = write_tree(model, BETA, "beta-2.5.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: beta\nVersion: 2.5\n"})
    pack = pack_metadata_tree(model) if request.param == "packed" else None
    wheels = {sha: {"dist": dist, "dist_info": info}
              for sha, dist, info in ((ALPHA, "alpha-unit", alpha), (BETA, "beta", beta))}
    wheels["c" * 64] = {"dist": "gamma", "dist_info": None}  # no pack-time metadata
    return {"wheels": wheels, "metadata_pack": pack}


def working_set_of(plan: dict[str, Any], cache: Path) -> Any:
    """A fresh, empty working set of the real pkg_resources, the locked ones added."""
    module = types.ModuleType("pkg_resources_copy")
    module.__dict__.update(vars(pkg_resources))
    module.working_set = pkg_resources.WorkingSet([])  # type: ignore[attr-defined]
    add_locked(module, plan, str(cache))  # type: ignore[arg-type]
    return module.working_set  # type: ignore[attr-defined]


def test_the_locked_distributions_are_found_by_requirement(
        plan: dict[str, Any], tmp_path: Path) -> None:
    ws = working_set_of(plan, tmp_path / "cache")
    alpha = ws.find(pkg_resources.Requirement.parse("alpha-unit"))
    assert (alpha.project_name, alpha.version) == ("alpha-unit", "1.0")
    assert alpha.location == str(tmp_path / "cache" / ALPHA)
    assert [str(r) for r in alpha.requires()] == ["beta>=2"]
    assert [d.project_name for d in ws.resolve([pkg_resources.Requirement.parse("alpha_unit")])
            ] == ["alpha-unit", "beta"]
    assert sorted(d.project_name for d in ws) == ["alpha-unit", "beta"]  # not gamma


def test_entry_points_and_metadata_read_through_the_provider(
        plan: dict[str, Any], tmp_path: Path) -> None:
    ws = working_set_of(plan, tmp_path / "cache")
    (ep,) = ws.iter_entry_points("unit.plugins")
    assert (ep.name, ep.module_name, ep.dist.project_name) == ("first", "alpha_unit",
                                                               "alpha-unit")
    alpha = ws.by_key["alpha-unit"]
    assert alpha.has_metadata("RECORD") and not alpha.has_metadata("absent")
    assert not alpha.has_metadata("licenses")  # a folder
    assert alpha.metadata_isdir("licenses") and not alpha.metadata_isdir("RECORD")
    assert alpha.metadata_listdir("licenses") == ["LICENSE"]
    assert "RECORD" in alpha.metadata_listdir("")
    assert alpha.get_metadata("licenses/LICENSE") == "MIT\n"
    assert list(alpha.get_metadata_lines("RECORD")) == ["alpha_unit/__init__.py,,"]
    with pytest.raises(FileNotFoundError):
        alpha.get_metadata("absent")


def test_a_distribution_the_working_set_has_already_is_kept(
        plan: dict[str, Any], tmp_path: Path) -> None:
    module = types.ModuleType("pkg_resources_copy")
    module.__dict__.update(vars(pkg_resources))
    ws = module.working_set = pkg_resources.WorkingSet([])  # type: ignore[attr-defined]
    mine = pkg_resources.Distribution(str(tmp_path / "mine"), project_name="beta",
                                      version="9.0")
    ws.add(mine)
    add_locked(module, plan, str(tmp_path / "cache"))  # type: ignore[arg-type]
    assert ws.by_key["beta"] is mine
    assert ws.by_key["alpha-unit"].version == "1.0"


def test_a_module_without_a_working_set_is_left_alone(plan: dict[str, Any]) -> None:
    add_locked(types.ModuleType("not_pkg_resources"), plan, "/nowhere")  # type: ignore[arg-type]


# ---------------------------------------------------------------- a locked pkg_resources


@pytest.fixture
def setuptools_wheel(tmp_path: Path, pypi: PackageIndex) -> Path:
    """A wheel of this interpreter's setuptools, made from its installed files."""
    dist = importlib.metadata.distribution("setuptools")
    info = f"setuptools-{dist.version}.dist-info"
    files: dict[str, bytes] = {}
    for file in dist.files or []:
        path = str(file)
        if (path.startswith((info + "/", "..")) or "__pycache__" in path
                or not path.startswith(("setuptools/", "pkg_resources/", "_distutils_hack/"))):
            continue
        files[path] = Path(str(file.locate())).read_bytes()
    files[f"{info}/entry_points.txt"] = (dist.read_text("entry_points.txt") or "").encode()
    return pypi.add(make_wheel(tmp_path / "w", "setuptools", dist.version, files))


def test_a_locked_pkg_resources_sees_locked_distributions_from_the_pack(
        setuptools_wheel: Path, tmp_path: Path, pypi: PackageIndex,
        build_carton: Callable[..., Path], hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "VALUE = 1\n",
        "alpha-1.0.dist-info/entry_points.txt": "[alpha.plugins]\none = alpha:VALUE\n"}))
    carton = build_carton("setuptools\nalpha\n", {"model.py": """
import os, warnings
warnings.simplefilter('ignore')
def main():
    import pkg_resources
    alpha = pkg_resources.get_distribution('alpha')
    print(alpha.version, os.path.basename(os.path.dirname(alpha.location)).startswith('py'))
    print(pkg_resources.get_distribution('setuptools').project_name)
    print([ep.load() for ep in pkg_resources.iter_entry_points('alpha.plugins')])
    print(alpha.has_metadata('RECORD'), pkg_resources.require('alpha')[0] is alpha)
"""})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["1.0 True", "setuptools", "[1]", "True True"]
