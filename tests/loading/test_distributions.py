"""loading/distributions.py: `importlib.metadata` answered from the metadata recorded at
pack time, with files located in the cache entry, without installing anything."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from carton_hook.formats.metadatapack import PACKED_DIR
from carton_hook.loading.distributions import (
    CartonDistribution,
    distributions,
    installed_record,
)
from carton_hook.loading.finder import CartonFinder
from carton_hook.planning.planfile import PLAN_FORMAT

from ..factory import pack_metadata_tree, record_row

ALPHA, BETA, GAMMA, DELTA = "a" * 64, "b" * 64, "c" * 64, "d" * 64


def dist_info(root: Path, folder: str, files: dict[str, str]) -> str:
    path = root / folder
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)
    return str(path)


def wheel(dist: str, info: str | None, top_level: list[str]) -> dict[str, object]:
    return {"name": f"{dist}-1.0-py3-none-any.whl", "dist": dist, "version": "1.0",
            "size": 1, "url": f"https://files.example/{dist}.whl", "bundled": None,
            "dist_info": info, "deps": [], "top_level": top_level, "roots": [""]}


@pytest.fixture(params=["tree", "packed"])
def plan(tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """alpha (entry points, RECORD, no top_level.txt), beta (its own top_level.txt),
    gamma (no pack-time metadata), delta (nothing but METADATA, no import names); their
    metadata as a model folder has it (a tree), or as an extracted .carton (a pack)."""
    meta = tmp_path / "model" / ".carton" / "dist-info"
    init = "VALUE = 1\n"
    record = "".join(",".join(row) + "\n" for row in (
        record_row("alpha_unit/__init__.py", init.encode()),
        ["alpha_unit-1.0.dist-info/RECORD", "", ""]))
    alpha = dist_info(meta / ALPHA, "alpha_unit-1.0.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: Alpha_Unit\nVersion: 1.0\n"
                    "Requires-Dist: beta>=1\n",
        "entry_points.txt": "[console_scripts]\nalpha-cli = alpha_unit:cli\n"
                            "[unit.plugins]\nfirst = alpha_unit:plugin\n",
        "RECORD": record})
    (Path(alpha) / "licenses").mkdir()
    beta = dist_info(meta / BETA, "beta-1.0.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: beta\nVersion: 2.5\n",
        "top_level.txt": "beta_real\n"})
    delta = dist_info(meta / DELTA, "delta-1.0.dist-info", {
        "METADATA": "Metadata-Version: 2.1\nName: delta\nVersion: 0.1\n"})
    (tmp_path / "cache" / ALPHA / "alpha_unit").mkdir(parents=True)
    (tmp_path / "cache" / ALPHA / "alpha_unit" / "__init__.py").write_text(init)
    packed = pack_metadata_tree(tmp_path / "model") if request.param == "packed" else None
    return {"format": PLAN_FORMAT, "stdlib": [], "model": str(tmp_path / "model"),
            "name": "m", "version": "1", "entrypoint": "model:main",
            "requirements": "requirements.txt", "archive": None, "metadata_pack": packed,
            "section": "here",
            "wheels": {ALPHA: wheel("alpha-unit", alpha, ["alpha_unit"]),
                       BETA: wheel("beta", beta, ["beta"]),
                       GAMMA: wheel("gamma", None, ["gamma"]),
                       DELTA: wheel("delta", delta, [])},
            "imports": {"alpha_unit": ALPHA, "beta": BETA, "gamma": GAMMA},
            "namespaces": {}, "shared": {}, "listed": {}, "distutils_shim": False}


def only(found: list[Any]) -> CartonDistribution:
    assert len(found) == 1 and isinstance(found[0], CartonDistribution), found
    return found[0]


def test_every_locked_distribution_with_metadata_is_listed_once(
        plan: dict[str, Any], tmp_path: Path) -> None:
    found = distributions(plan, str(tmp_path / "cache"), None)  # type: ignore[arg-type]
    assert [d.metadata["Name"] for d in found] == ["Alpha_Unit", "beta", "delta"]
    assert repr(found[0]) == (f"<CartonDistribution alpha_unit-1.0.dist-info in "
                              f"{tmp_path / 'cache' / ALPHA}>")


@pytest.mark.parametrize("name", ["alpha-unit", "Alpha_Unit", "alpha.unit", "ALPHA-_.UNIT"])
def test_one_distribution_is_found_by_any_spelling_of_its_name(
        plan: dict[str, Any], tmp_path: Path, name: str) -> None:
    found = distributions(plan, str(tmp_path / "cache"), name)  # type: ignore[arg-type]
    assert only(found).metadata["Name"] == "Alpha_Unit"


def test_a_name_that_is_not_locked_or_has_no_metadata_finds_nothing(
        plan: dict[str, Any], tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    assert distributions(plan, root, "not-locked") == []  # type: ignore[arg-type]
    assert distributions(plan, root, "gamma") == []  # type: ignore[arg-type]


def test_version_requires_and_entry_points_come_from_the_pack_time_folder(
        plan: dict[str, Any], tmp_path: Path) -> None:
    alpha = only(distributions(plan, str(tmp_path / "cache"), "alpha-unit"))  # type: ignore[arg-type]
    assert (alpha.version, alpha.requires) == ("1.0", ["beta>=1"])
    assert sorted((e.group, e.name, e.value) for e in alpha.entry_points) == [
        ("console_scripts", "alpha-cli", "alpha_unit:cli"),
        ("unit.plugins", "first", "alpha_unit:plugin")]


def test_files_are_located_in_the_cache_entry(plan: dict[str, Any], tmp_path: Path) -> None:
    entry = tmp_path / "cache" / ALPHA
    alpha = only(distributions(plan, str(entry.parent), "alpha-unit"))  # type: ignore[arg-type]
    files = {str(f): f for f in alpha.files or []}
    init = files["alpha_unit/__init__.py"]
    assert Path(str(init.locate())) == entry / "alpha_unit" / "__init__.py"
    assert init.read_text() == "VALUE = 1\n"
    assert alpha.locate_file("anything") == entry / "anything"


def test_the_record_names_data_scheme_members_where_the_entry_holds_them() -> None:
    record = "".join(f"{row}\n" for row in (
        "alpha/__init__.py,sha256=a,1",
        "alpha-1.0.data/purelib/alpha_extra.py,sha256=b,2",
        "alpha-1.0.data/platlib/alpha_native.so,sha256=c,3",
        "alpha-1.0.data/scripts/alpha-tool,sha256=d,4",
        "alpha-1.0.data/headers/alpha.h,sha256=e,5",
        '"alpha-1.0.data/data/share/alpha/a,b.txt",sha256=f,6',
        "alpha-1.0.dist-info/RECORD,,"))
    assert installed_record(record, "alpha-1.0.dist-info").splitlines() == [
        "alpha/__init__.py,sha256=a,1", "alpha_extra.py,sha256=b,2",
        "alpha_native.so,sha256=c,3", "bin/alpha-tool,sha256=d,4", "include/alpha.h,sha256=e,5",
        '"data/share/alpha/a,b.txt",sha256=f,6', "alpha-1.0.dist-info/RECORD,,"]
    plain = "alpha/__init__.py,sha256=a,1\nalpha-1.0.dist-info/RECORD,,\n"
    assert installed_record(plain, "alpha-1.0.dist-info") is plain  # not parsed at all
    # Another distribution's .data folder is only a folder (it cannot be in a checked wheel).
    other = "beta-1.0.data/purelib/x.py,sha256=a,1\n"
    assert installed_record(other, "alpha-1.0.dist-info") == other


def test_top_level_txt_falls_back_to_the_import_names_recorded_at_pack_time(
        plan: dict[str, Any], tmp_path: Path) -> None:
    root = str(tmp_path / "cache")
    by_name = {d.metadata["Name"]: d for d in distributions(plan, root, None)}  # type: ignore[arg-type]
    assert by_name["Alpha_Unit"].read_text("top_level.txt") == "alpha_unit\n"
    assert by_name["beta"].read_text("top_level.txt") == "beta_real\n"  # its own file wins
    assert by_name["delta"].read_text("top_level.txt") is None


@pytest.mark.parametrize("packed", [False, True])
def test_a_file_reads_as_path_read_text_reads_it(tmp_path: Path, packed: bool) -> None:
    """UTF-8, with any line end read as \\n."""
    model = tmp_path / "model"
    folder = model / PACKED_DIR / ALPHA / "alpha-1.0.dist-info"
    folder.mkdir(parents=True)
    raw = "Name: alpha\r\nSummary: d\u00e9j\u00e0 vu\rVersion: 1.0\n".encode()
    (folder / "METADATA").write_bytes(raw)
    expected = (folder / "METADATA").read_text(encoding="utf-8")
    pack = pack_metadata_tree(model) if packed else None
    found = CartonDistribution(folder, tmp_path / "cache" / ALPHA, [], "alpha", pack)
    assert found.read_text("METADATA") == expected
    assert expected == "Name: alpha\nSummary: d\u00e9j\u00e0 vu\nVersion: 1.0\n"
    assert found.version == "1.0"


@pytest.mark.parametrize("filename", ["LICENSE", "licenses", "METADATA/inside"])
def test_a_file_that_is_not_there_reads_as_none(plan: dict[str, Any], tmp_path: Path,
                                                filename: str) -> None:
    alpha = only(distributions(plan, str(tmp_path / "cache"), "alpha-unit"))  # type: ignore[arg-type]
    assert alpha.read_text(filename) is None


def test_its_normalized_name_is_the_one_importlib_compares(
        plan: dict[str, Any], tmp_path: Path) -> None:
    alpha = only(distributions(plan, str(tmp_path / "cache"), "alpha-unit"))  # type: ignore[arg-type]
    assert alpha._normalized_name == "alpha_unit"


def test_its_normalized_name_does_not_parse_its_metadata(
        plan: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # importlib.metadata asks every distribution for it on each version() or
    # distributions(): the plan's name answers, as the folder name does for a venv's.
    found = distributions(plan, str(tmp_path / "cache"), None)  # type: ignore[arg-type]
    monkeypatch.setattr(CartonDistribution, "read_text", lambda self, filename: None)
    assert sorted(d._normalized_name for d in found) == ["alpha_unit", "beta", "delta"]


@pytest.fixture
def on_meta_path(plan: dict[str, Any], tmp_path: Path) -> Iterator[list[list[str]]]:
    """A finder for `plan` first on sys.meta_path, whose installs are recorded."""
    installs: list[list[str]] = []
    finder = CartonFinder(plan, str(tmp_path / "cache"), installs.append)  # type: ignore[arg-type]
    saved = list(sys.meta_path)
    sys.meta_path.insert(0, finder)
    try:
        yield installs
    finally:
        sys.meta_path[:] = saved
        importlib.invalidate_caches()


def test_importlib_metadata_answers_from_them_without_installing(
        on_meta_path: list[list[str]]) -> None:
    assert metadata.version("alpha-unit") == "1.0"
    assert metadata.version("BETA") == "2.5"
    assert isinstance(metadata.distribution("alpha_unit"), CartonDistribution)
    assert metadata.packages_distributions()["alpha_unit"] == ["Alpha_Unit"]
    assert on_meta_path == []
