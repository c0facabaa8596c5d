"""carton_hook/commands/info.py: `describe` (a carton, an unpacked carton or a model folder,
read as it is: nothing extracted, fetched or run), its JSON, `format_description` and
`format_size`."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from carton_hook.cache.layout import COMPLETE, packages_dir
from carton_hook.commands.info import (
    Description,
    PackageRow,
    describe,
    format_description,
    format_size,
)
from carton_hook.errors import ArchiveError, CartonError
from carton_hook.formats.archive import (
    CARTON_TOML,
    MANIFEST,
    METADATA_MEMBER,
    CartonInfo,
    format_carton_toml,
    format_manifest,
)
from carton_hook.formats.lockfile import (
    LOCK_PATH,
    Environment,
    Lock,
    Package,
    Wheel,
    bundled_path,
    dump_lock,
)
from carton_hook.installing.progress import Progress

from ..lockfactory import ALPHA, BETA, ELSEWHERE, HERE, lock_section, model_folder
from ..wheelzip import write_zip

INFO = CartonInfo(name="demo-model", version="0.1.0", entrypoint="model:main",
                  requires_python=">=3.10", created_by="carton 0.1.0")
SECRET_SHA = hashlib.sha256(b"secret").hexdigest()
SECRET = Package("secret", "3.0", Wheel("secret-3.0-py3-none-any.whl", SECRET_SHA, 1536,
                                        path=bundled_path(SECRET_SHA,
                                                          "secret-3.0-py3-none-any.whl")))


def lock_of(*sections: Environment) -> Lock:
    return Lock("requirements.txt", "0" * 64, tuple(sections), created_by="carton 0.1.0")


def write_carton(path: Path, lock: Lock, *, metadata: bytes | None = None,
                 leave_out: str = "") -> Path:
    """A `.carton` as the packer lays it out: carton.toml, MANIFEST, then model/."""
    files = {"model/model.py": b"def main():\n    raise SystemExit('ran')\n",
             "model/" + LOCK_PATH: dump_lock(lock)}
    if metadata is not None:
        files[METADATA_MEMBER] = metadata
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    members = [(CARTON_TOML, format_carton_toml(INFO)),
               (MANIFEST, format_manifest(manifest)), *files.items()]
    return write_zip(path, [(name, data) for name, data in members if name != leave_out])


def publish_entry(home: Path, sha256: str) -> None:
    entry = Path(packages_dir(home)) / sha256
    entry.mkdir(parents=True)
    (entry / COMPLETE).write_text("{}")


# ---------------------------------------------------------------- describe


def test_a_carton_is_described_from_its_archive_without_extracting_anything(
        tmp_path: Path) -> None:
    lock = lock_of(lock_section("elsewhere", ELSEWHERE, ALPHA),
                   lock_section("here", HERE, BETA, SECRET, ALPHA))
    carton = write_carton(tmp_path / "demo.carton", lock)
    home = tmp_path / "home"
    d = describe(carton, home)
    assert (d.path, d.name, d.version, d.entrypoint) == (carton, "demo-model", "0.1.0",
                                                         "model:main")
    assert (d.requires_python, d.created_by) == (">=3.10", "carton 0.1.0")
    assert (d.sections, d.applies, d.about) == (["elsewhere", "here"], "here", [])
    assert d.packages == [
        PackageRow("alpha", "1.0", 100, "files.example", cached=False, requested=True),
        PackageRow("beta", "1.0", 100, "files.example", cached=False, requested=True),
        PackageRow("secret", "3.0", 1536, "bundled", cached=False, requested=False),
    ]
    assert not home.exists()


def test_a_package_is_cached_once_its_entry_is_published(tmp_path: Path) -> None:
    lock = lock_of(lock_section("here", HERE, ALPHA, BETA, SECRET))
    carton = write_carton(tmp_path / "demo.carton", lock)
    home = tmp_path / "home"
    publish_entry(home, ALPHA.wheel.sha256)
    (Path(packages_dir(home)) / BETA.wheel.sha256).mkdir()  # being filled: no marker yet
    cached = {p.name: p.cached for p in describe(carton, home).packages}
    assert cached == {"alpha": True, "beta": False, "secret": False}


def test_where_no_section_applies_no_package_is_listed(tmp_path: Path) -> None:
    carton = write_carton(tmp_path / "demo.carton",
                          lock_of(lock_section("elsewhere", ELSEWHERE, ALPHA)))
    d = describe(carton, tmp_path / "home")
    assert (d.sections, d.applies, d.packages) == (["elsewhere"], None, [])


def test_the_models_metadata_is_shown_in_a_fixed_order_on_one_line_each(
        tmp_path: Path) -> None:
    metadata = (b"Metadata-Version: 2.4\nName: demo-model\nVersion: 0.1.0\n"
                b"Project-URL: Homepage, https://example.org/demo\n"
                b"Author-email: Ada <ada@example.org>\n"
                b"Summary: Predicts\n  the   weather\n"
                b"License-Expression: MIT\n"
                b"Project-URL: Source, https://example.org/src\n"
                b"Keywords: weather\n\nThe long description: Summary: not this\n")
    carton = write_carton(tmp_path / "demo.carton", lock_of(lock_section("here", HERE, ALPHA)),
                          metadata=metadata)
    assert describe(carton, tmp_path / "home").about == [
        ("Summary", "Predicts the weather"), ("License-Expression", "MIT"),
        ("Author-email", "Ada <ada@example.org>"),
        ("Project-URL", "Homepage, https://example.org/demo"),
        ("Project-URL", "Source, https://example.org/src")]


@pytest.mark.parametrize("missing", [CARTON_TOML, MANIFEST, "model/" + LOCK_PATH])
def test_a_zip_without_a_header_file_is_not_a_carton(tmp_path: Path, missing: str) -> None:
    carton = write_carton(tmp_path / "demo.carton", lock_of(lock_section("here", HERE, ALPHA)),
                          leave_out=missing)
    with pytest.raises(ArchiveError) as caught:
        describe(carton, tmp_path / "home")
    assert str(caught.value) == f"{carton}: {missing} is missing; is this a .carton file?"


def test_a_damaged_lock_member_is_an_archive_error_naming_it(tmp_path: Path) -> None:
    carton = write_carton(tmp_path / "demo.carton", lock_of(lock_section("here", HERE, ALPHA)))
    raw = bytearray(carton.read_bytes())
    with zipfile.ZipFile(carton) as zf:
        info = zf.getinfo("model/" + LOCK_PATH)
    start = info.header_offset + 30 + len(info.filename)
    for i in range(start, start + 16):
        raw[i] ^= 0x5A
    carton.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError) as caught:
        describe(carton, tmp_path / "home")
    assert str(caught.value).startswith(f"{carton}: ")
    assert LOCK_PATH in str(caught.value)


def test_a_directory_entry_zipfile_cannot_read_is_an_archive_error(tmp_path: Path) -> None:
    """A central directory entry whose "version needed to extract" is beyond what zipfile
    reads (a flipped bit, found by tests/e2e/test_fuzz.py): zipfile raises
    NotImplementedError while opening the archive, which `info` reports in one line."""
    carton = write_carton(tmp_path / "demo.carton", lock_of(lock_section("here", HERE, ALPHA)))
    raw = bytearray(carton.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # the first central directory entry
    raw[entry + 6] = 148  # version needed to extract: 14.8
    carton.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError) as caught:
        describe(carton, tmp_path / "home")
    assert str(caught.value) == (f"{carton}: not a readable .carton archive "
                                 "(zip file version 14.8)")


def test_a_model_folder_is_described_from_its_pyproject_and_lock(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, lock_section("here", HERE, ALPHA))
    home = tmp_path / "home"
    d = describe(folder, home)
    assert (d.path, d.name, d.version, d.entrypoint) == (folder, "m", "1.0", "model:main")
    assert (d.requires_python, d.created_by, d.applies) == ("", "", "here")
    assert [p.name for p in d.packages] == ["alpha"]
    assert not home.exists()


def test_an_unpacked_carton_is_described_from_its_carton_toml(tmp_path: Path) -> None:
    carton = write_carton(tmp_path / "demo.carton", lock_of(lock_section("here", HERE, BETA)))
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(carton) as zf:
        zf.extractall(unpacked)
    d = describe(unpacked, tmp_path / "home")
    assert (d.name, d.requires_python, d.created_by) == ("demo-model", ">=3.10",
                                                         "carton 0.1.0")
    assert [p.name for p in d.packages] == ["beta"]


def test_a_model_folder_without_a_lock_says_how_to_lock_it(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, lock_section("here", HERE, ALPHA))
    os.remove(folder / LOCK_PATH)
    with pytest.raises(CartonError) as caught:
        describe(folder, tmp_path / "home")
    assert str(caught.value) == (
        f"{folder / LOCK_PATH}: cannot read (No such file or directory); lock the model "
        "folder: python -m carton_backend lock MODEL_DIR")


def test_the_json_has_every_field_under_its_documented_name(tmp_path: Path) -> None:
    carton = write_carton(tmp_path / "demo.carton",
                          lock_of(lock_section("here", HERE, SECRET)),
                          metadata=b"Name: demo-model\nSummary: Predicts\n")
    data = json.loads(json.dumps(describe(carton, tmp_path / "home").to_json()))
    assert data == {
        "path": str(carton), "name": "demo-model", "version": "0.1.0",
        "entrypoint": "model:main", "requires-python": ">=3.10",
        "created-by": "carton 0.1.0", "sections": ["here"], "applies": "here",
        "metadata": [["Summary", "Predicts"]],
        "packages": [{"name": "secret", "version": "3.0", "size": 1536,
                      "source": "bundled", "cached": False, "requested": False}]}


# ---------------------------------------------------------------- format_description


DESCRIPTION = Description(
    path=Path("dist/demo.carton"), name="demo-model", version="0.1.0",
    entrypoint="model:main", requires_python=">=3.10", created_by="carton 0.1.0",
    sections=["cp311-linux-x86_64", "cp312-linux"], applies="cp312-linux",
    packages=[PackageRow("numpy", "2.1.0", 16_500_000, "files.pythonhosted.org", True, True),
              PackageRow("six", "1.16.0", 11_053, "bundled", False, False)],
    about=[("Summary", "Predicts the weather"), ("License", "MIT")])


def test_the_description_is_a_header_the_sections_and_a_table_of_packages() -> None:
    assert format_description(DESCRIPTION) == (
        "demo-model 0.1.0  (dist/demo.carton)\n"
        "  summary:         Predicts the weather\n"
        "  license:         MIT\n"
        "  entrypoint:      model:main\n"
        "  requires-python: >=3.10\n"
        "  created by:      carton 0.1.0\n"
        "  lock sections:   cp311-linux-x86_64, cp312-linux (applies here)\n"
        "  packages:        2, 16.5 MB (16.5 MB cached)\n"
        "\n"
        "  name   version  size     from                    cached\n"
        "  numpy  2.1.0    16.5 MB  files.pythonhosted.org  yes\n"
        "  six    1.16.0   11.1 kB  bundled                 no\n")


def test_fields_a_model_folder_does_not_have_are_left_out() -> None:
    text = format_description(replace(DESCRIPTION, requires_python="", created_by="", about=[]))
    assert text.splitlines()[:3] == ["demo-model 0.1.0  (dist/demo.carton)",
                                     "  entrypoint:      model:main",
                                     "  lock sections:   cp311-linux-x86_64, cp312-linux "
                                     "(applies here)"]


def test_without_a_section_for_this_interpreter_it_says_what_running_it_does() -> None:
    text = format_description(replace(DESCRIPTION, applies=None, packages=[]))
    assert text.endswith(
        "  lock sections:   cp311-linux-x86_64, cp312-linux\n"
        "  no section applies to this interpreter: running it locks one "
        "(see docs/runtime.md)\n")
    assert "packages:" not in text and "(applies here)" not in text


def test_an_empty_section_has_a_table_header_only() -> None:
    text = format_description(replace(DESCRIPTION, packages=[]))
    assert text.endswith("  packages:        0, 0 B (0 B cached)\n\n"
                         "  name  version  size  from  cached\n")


def test_no_line_of_the_table_ends_in_spaces() -> None:
    rows = [PackageRow("a-very-long-name", "1", 1, "", False, True)]
    for line in format_description(replace(DESCRIPTION, packages=rows)).splitlines():
        assert line == line.rstrip()


# ---------------------------------------------------------------- format_size


@pytest.mark.parametrize(("size", "shown"), [
    (0, "0 B"), (1, "1 B"), (1000, "1.0 kB"), (1049, "1.0 kB"), (1050, "1.1 kB"),
    (999_900, "999.9 kB"), (999_999, "1.0 MB"), (999_949_999, "999.9 MB"),
    (1_000_000, "1.0 MB"), (1_048_576, "1.0 MB"),
    (512 * 1024 * 1024, "536.9 MB"), (10**9, "1.0 GB"), (5 * 10**12, "5000.0 GB"),
])
def test_a_size_is_in_powers_of_1000_with_one_decimal_above_bytes(size: int,
                                                                   shown: str) -> None:
    assert format_size(size) == shown


def test_one_wheel_has_one_size_in_info_and_in_progress() -> None:
    """`info` said 71.8 MB (powers of 1024) where the progress said 75.2 MB."""
    read, write = os.pipe()
    progress = Progress(write, after=60)
    progress.start("demo", packages=1, total=75_200_000)
    status = progress.status()
    progress.stop()
    os.close(write)
    os.close(read)
    assert "/75.2 MB" in status
    assert format_size(75_200_000) == "75.2 MB"
    assert (format_size(999), format_size(1536), format_size(3 * 10**9)) == (
        "999 B", "1.5 kB", "3.0 GB")
