"""formats/metadatapack.py: the locked wheels' metadata of an extracted model, in one
file: written, read back member by member, and refused whole when damaged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carton_hook.errors import CacheError
from carton_hook.formats.lockfile import DIST_INFO_DIR
from carton_hook.formats.metadatapack import (
    PACK,
    PACKED_DIR,
    PackWriter,
    list_metadata,
    metadata_kind,
    open_pack,
    packed_path,
    read_metadata,
)

SHA = "a" * 64
MEMBERS = {
    f"{SHA}/demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    f"{SHA}/demo-1.0.dist-info/RECORD": b"demo/__init__.py,sha256=x,0\n" * 500,
    f"{SHA}/demo-1.0.dist-info/licenses/LICENSE with spaces.txt": b"MIT\n",
    f"{SHA}/demo-1.0.dist-info/empty": b"",
    f"{'b' * 64}/other-2.0.dist-info/entry_points.txt": b"[console_scripts]\nx = m:f\n",
}


def write_pack(root: Path, members: dict[str, bytes] = MEMBERS, *,
               chunked: bool = False) -> Path:
    path = root / PACK
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb") as file:
        writer = PackWriter(file)
        for name, data in members.items():
            chunks = [data[i:i + 7] for i in range(0, len(data), 7)] if chunked else [data]
            writer.add(name, iter(chunks))
        writer.finish()
    return path


def tree(root: Path, name: str) -> str:
    return str(root / PACKED_DIR / name)


def test_the_pack_holds_the_folder_the_lock_layout_names() -> None:
    assert PACKED_DIR == DIST_INFO_DIR
    assert PACK.startswith(".carton/")


@pytest.mark.parametrize("chunked", [False, True])
def test_every_member_reads_back_as_written(tmp_path: Path, chunked: bool) -> None:
    pack = write_pack(tmp_path, chunked=chunked)
    found = open_pack(str(pack))
    assert found is not None
    for name, data in MEMBERS.items():
        assert found.read(name) == data
        assert read_metadata(tree(tmp_path, name), str(pack)) == data


def test_folders_and_listings_are_those_of_the_tree_it_replaces(tmp_path: Path) -> None:
    pack = str(write_pack(tmp_path))
    on_disk = tmp_path / "on-disk"
    for name, data in MEMBERS.items():
        (on_disk / PACKED_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (on_disk / PACKED_DIR / name).write_bytes(data)
    found = open_pack(pack)
    assert found is not None
    assert found.folders("") == sorted(os.listdir(on_disk / PACKED_DIR))
    dist_info = f"{SHA}/demo-1.0.dist-info"
    for relpath in ("", SHA, dist_info, f"{dist_info}/licenses", "absent",
                    f"{dist_info}/METADATA"):
        in_pack, from_disk = tree(tmp_path, relpath), tree(on_disk, relpath)
        assert list_metadata(in_pack, pack) == list_metadata(from_disk, None), relpath
        assert metadata_kind(in_pack, pack) == metadata_kind(from_disk, None), relpath
    assert metadata_kind(tree(tmp_path, f"{dist_info}/METADATA"), pack) == "file"
    assert metadata_kind(tree(tmp_path, f"{dist_info}/licenses"), pack) == "folder"
    assert metadata_kind(tree(tmp_path, f"{dist_info}/nothing"), pack) is None
    assert found.folders(dist_info) == ["licenses"]


def test_what_the_pack_lacks_is_not_found(tmp_path: Path) -> None:
    pack = str(write_pack(tmp_path))
    with pytest.raises(FileNotFoundError):
        read_metadata(tree(tmp_path, f"{SHA}/demo-1.0.dist-info/entry_points.txt"), pack)
    with pytest.raises(FileNotFoundError):
        read_metadata(tree(tmp_path, f"{SHA}/demo-1.0.dist-info"), pack)  # a folder
    with pytest.raises(FileNotFoundError):  # a path outside the tree the pack holds
        read_metadata(str(tmp_path / ".carton" / "carton.lock"), pack)
    with pytest.raises(FileNotFoundError):
        packed_path(str(tmp_path / ".carton" / "dist-info-x" / "METADATA"), pack)
    assert list_metadata(str(tmp_path / "elsewhere"), pack) == []


def test_without_a_pack_the_tree_on_disk_is_read(tmp_path: Path) -> None:
    """A model folder, and a model an earlier carton extracted as a tree."""
    path = tmp_path / PACKED_DIR / SHA / "demo-1.0.dist-info" / "METADATA"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"Name: demo\n")
    assert read_metadata(str(path), None) == b"Name: demo\n"
    assert read_metadata(str(path), str(tmp_path / PACK)) == b"Name: demo\n"
    with pytest.raises(FileNotFoundError):
        read_metadata(str(path.with_name("RECORD")), None)


def test_a_pack_missing_at_first_is_found_once_it_is_there(tmp_path: Path) -> None:
    """Not remembered as absent: the model may be extracted (again) meanwhile."""
    assert open_pack(str(tmp_path / PACK)) is None
    write_pack(tmp_path)
    assert open_pack(str(tmp_path / PACK)) is not None


def test_a_member_name_the_index_cannot_hold_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "pack", "wb") as file:
        writer = PackWriter(file)
        for name in ("a\nb", "", "/abs"):
            with pytest.raises(ValueError, match="cannot be a member"):
                writer.add(name, [b"x"])


def test_a_read_in_a_forked_child_does_not_move_the_parents_reads(tmp_path: Path) -> None:
    pack = str(write_pack(tmp_path))
    found = open_pack(pack)
    assert found is not None
    names = list(MEMBERS)
    pid = os.fork()
    if pid == 0:  # the child reads while the parent does
        ok = all(found.read(n) == MEMBERS[n] for _ in range(200) for n in names)
        os._exit(0 if ok else 1)
    parent_ok = all(found.read(n) == MEMBERS[n] for _ in range(200) for n in reversed(names))
    _, status = os.waitpid(pid, 0)
    assert parent_ok
    assert os.waitstatus_to_exitcode(status) == 0


def damaged_forms(good: bytes) -> list[tuple[str, bytes]]:
    start = int(good[-21:-1])
    forms = [("empty", b""), ("no magic", b"zip" + good[3:]),
             ("no trailer", good[:-21]), ("trailer not digits", good[:-21] + b"x" * 20 + b"\n"),
             ("trailer without newline", good[:-1] + b"0"),
             ("index before the members", good[:-21] + b"%020d\n" % 3),
             ("index after the end", good[:-21] + b"%020d\n" % len(good)),
             ("index line not three fields", good[:start] + b"12\n" + good[-21:]),
             ("index line not digits", good[:start] + b"1x 2 a\n" + good[-21:]),
             ("index line of other digits", good[:start] + "²4 1 a\n".encode() + good[-21:]),
             ("member past the index", good[:start] + b"30 99999999 a\n" + good[-21:]),
             ("member in the magic", good[:start] + b"0 4 a\n" + good[-21:]),
             ("index not UTF-8", good[:start] + b"30 1 \xff\n" + good[-21:])]
    # Every cut: a pack cut short is refused whole, never read as a shorter one.
    forms += [(f"cut at {n}", good[:n]) for n in range(0, len(good), 97)]
    return forms


def test_a_damaged_pack_is_refused_naming_it_and_what_to_do(tmp_path: Path) -> None:
    good = write_pack(tmp_path / "good", {"a/b": b"x" * 300, "c": b"y"}).read_bytes()
    for what, data in damaged_forms(good):
        path = tmp_path / "bad" / what / PACK
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        with pytest.raises(CacheError) as caught:
            open_pack(str(path))
        message = str(caught.value)
        assert str(path) in message and "cache clear" in message and "\n" not in message, what


def test_a_member_cut_short_under_a_reader_is_refused(tmp_path: Path) -> None:
    path = write_pack(tmp_path, {"a": b"x" * 1000})
    found = open_pack(str(path))
    assert found is not None
    os.truncate(path, 500)
    with pytest.raises(CacheError, match="a is cut short"):
        found.read("a")
