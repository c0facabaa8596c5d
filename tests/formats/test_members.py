"""carton_hook/formats/members.py: `check_members`, the one policy for the members of every
zip carton unpacks (docs/security.md A1-A9), and its `Limits`, called directly on the
members' headers as zipfile reads them."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from carton_hook.errors import UnsafeMember
from carton_hook.formats.members import SUPPORTED_METHODS, Limits, check_members

from ..wheelzip import write_zip

ROOMY = Limits(members=1000, unpacked=10**9, ratio=20)


def member(name: str, size: int = 10, *, mode: int = stat.S_IFREG | 0o644, flags: int = 0,
           method: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A member's header as zipfile reads it (a folder when `name` ends with '/')."""
    info = zipfile.ZipInfo("placeholder", date_time=(2020, 1, 1, 0, 0, 0))
    info.filename = name  # as read from the archive: no NUL or separator rewriting
    info.file_size = size
    info.external_attr = mode << 16
    info.flag_bits = flags | (0 if name.isascii() else 0x800)
    info.compress_type = method
    return info


def refused(infos: list[zipfile.ZipInfo], fragment: str, archive_size: int = 1000,
            limits: Limits = ROOMY) -> UnsafeMember:
    with pytest.raises(UnsafeMember) as caught:
        check_members(infos, archive_size, limits)
    assert fragment in str(caught.value), str(caught.value)
    return caught.value


# ---------------------------------------------------------------- what passes


def test_the_files_are_returned_in_order_and_folders_left_out() -> None:
    infos = [member("demo/"), member("demo/b.py"), member("demo/sub/"), member("demo/a.py"),
             member("demo/sub/c.py")]
    assert check_members(infos, 1000, ROOMY) == [infos[1], infos[3], infos[4]]


def test_an_empty_archive_passes() -> None:
    assert check_members([], 22, ROOMY) == []


def test_members_are_read_from_any_iterable_once() -> None:
    infos = [member("demo/a.py"), member("demo/b.py")]
    assert check_members(iter(infos), 1000, ROOMY) == infos


def test_the_members_of_a_real_zip_pass_as_zipfile_reads_them(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "demo.zip", [("demo/__init__.py", b"x = 1\n"),
                                             ("demo/caf\u00e9.py", b""),
                                             ("demo/data/a.bin", bytes(5000))])
    with zipfile.ZipFile(path) as zf:
        files = check_members(zf.infolist(), path.stat().st_size, ROOMY)
    assert [f.filename for f in files] == ["demo/__init__.py", "demo/caf\u00e9.py",
                                           "demo/data/a.bin"]


@pytest.mark.parametrize("mode", [0, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755,
                                  stat.S_IFREG | stat.S_ISUID | 0o777])
def test_a_regular_file_or_a_member_without_a_unix_type_passes(mode: int) -> None:
    assert check_members([member("demo/a.py", mode=mode)], 1000, ROOMY)


def test_a_member_made_on_windows_passes() -> None:
    """Only MS-DOS attributes (the archive bit), no Unix mode: a regular file."""
    info = member("demo/a.py")
    info.external_attr = 0x20
    assert check_members([info], 1000, ROOMY) == [info]


@pytest.mark.parametrize("method", sorted(SUPPORTED_METHODS))
def test_each_method_zipfile_reads_passes(method: int) -> None:
    assert check_members([member("demo/a.py", method=method)], 1000, ROOMY)


def test_a_folder_entry_twice_passes() -> None:
    infos = [member("demo/"), member("demo/"), member("Demo/"), member("demo/a.py")]
    assert check_members(infos, 1000, ROOMY) == [infos[3]]


# ---------------------------------------------------------------- names


def test_an_unsafe_name_is_refused_with_the_reason() -> None:
    err = refused([member("demo/a.py"), member("demo/../../x.py")],
                  "unsafe member name 'demo/../../x.py': empty, '.' or '..' path component")
    assert err.kind == "unsafe-member"


def test_a_name_with_a_nul_byte_is_refused() -> None:
    refused([member("demo/a.py\x00.txt")], "unsafe member name 'demo/a.py\\x00.txt': control")


def test_a_name_beyond_ascii_must_be_marked_utf8() -> None:
    info = member("demo/caf\u00e9.py")
    assert check_members([info], 1000, ROOMY) == [info]
    info.flag_bits &= ~0x800
    refused([info], "member name 'demo/caf\u00e9.py' is not marked as UTF-8")


def test_an_ascii_name_needs_no_utf8_flag() -> None:
    info = member("demo/a.py")
    assert info.flag_bits & 0x800 == 0
    assert check_members([info], 1000, ROOMY) == [info]


def test_a_reserved_name_is_refused_and_the_judge_sees_every_name() -> None:
    seen: list[str] = []

    def reserved(name: str) -> bool:
        seen.append(name)
        return name == ".carton-complete"

    infos = [member("demo/"), member("demo/.carton-complete"), member("demo/a.py")]
    assert check_members(infos, 1000, ROOMY, reserved=reserved) == infos[1:]
    assert seen == ["demo/", "demo/.carton-complete", "demo/a.py"]
    with pytest.raises(UnsafeMember) as caught:
        check_members([member("demo/a.py"), member(".carton-complete")], 1000, ROOMY,
                      reserved=reserved)
    assert str(caught.value) == "member '.carton-complete' is reserved for carton's cache"


def test_without_a_judge_no_name_is_reserved() -> None:
    assert check_members([member(".carton-complete")], 1000, ROOMY)


# ---------------------------------------------------------------- collisions


@pytest.mark.parametrize(("first", "second"), [
    ("demo/a.py", "demo/a.py"),
    ("demo/Mod.py", "demo/mod.py"),
    ("demo/caf\u00e9.py", "demo/cafe\u0301.py"),
    ("demo/stra\u00dfe.py", "demo/strasse.py"),  # equal under full case folding
    ("demo/x", "demo/x/"),
    ("demo/x/", "demo/X"),
])
def test_names_one_file_system_may_take_for_one_are_refused(first: str, second: str) -> None:
    refused([member(first), member(second)], f"members {first!r} and {second!r} collide")


def test_a_file_and_a_folder_of_one_name_differing_in_case_are_refused() -> None:
    refused([member("demo/X"), member("demo/x/y.py")], "'demo/x' is both a file and a folder")


def test_a_file_under_a_file_is_refused_whatever_the_order() -> None:
    refused([member("demo/x/y.py"), member("demo/x")], "'demo/x' is both a file and a folder")


# ---------------------------------------------------------------- types, encryption, methods


@pytest.mark.parametrize(("mode", "kind"), [
    (stat.S_IFLNK | 0o777, "symlink"), (stat.S_IFIFO | 0o644, "fifo"),
    (stat.S_IFCHR | 0o644, "char"), (stat.S_IFBLK | 0o644, "block"),
    (stat.S_IFSOCK | 0o644, "socket"), (stat.S_IFDIR | 0o755, "folder-without-slash"),
])
def test_a_member_that_is_not_a_regular_file_is_refused(mode: int, kind: str) -> None:
    refused([member("demo/a.py"), member("demo/link", mode=mode)],
            "member 'demo/link' is not a regular file")


def test_an_encrypted_member_is_refused() -> None:
    refused([member("demo/a.py", flags=0x1)], "member 'demo/a.py' is encrypted")


@pytest.mark.parametrize("method", [1, 6, 9, 93, 98, 99])
def test_a_method_zipfile_does_not_read_is_refused(method: int) -> None:
    refused([member("demo/a.py", method=method)],
            f"uses compression method {method}, which is not supported")


# ---------------------------------------------------------------- limits


def test_the_member_count_may_reach_the_limit_but_not_pass_it() -> None:
    limits = Limits(members=3, unpacked=10**6, ratio=20)
    infos = [member("demo/"), member("demo/a.py"), member("demo/b.py")]
    assert len(check_members(infos, 1000, limits)) == 2
    refused([*infos, member("demo/c.py")], "4 members, more than 3 (CARTON_MAX_MEMBERS)",
            limits=limits)


def test_the_declared_sizes_may_reach_the_limit_but_not_pass_it() -> None:
    limits = Limits(members=10, unpacked=1000, ratio=2)
    assert check_members([member("a", 600), member("b", 400)], 100, limits)
    refused([member("a", 600), member("b", 401)],
            "unpacks to 1001 bytes, more than the 1000 allowed", archive_size=100,
            limits=limits)


def test_a_bigger_archive_may_unpack_to_ratio_times_its_size() -> None:
    limits = Limits(members=10, unpacked=1000, ratio=2)
    assert check_members([member("a", 3000)], 1500, limits)
    refused([member("a", 3001)], "more than the 3000 allowed", archive_size=1500,
            limits=limits)


def test_the_size_a_folder_entry_declares_is_not_counted() -> None:
    limits = Limits(members=10, unpacked=1000, ratio=2)
    assert check_members([member("demo/", 10**12), member("demo/a", 1000)], 10, limits)


def test_the_defaults_are_those_docs_security_md_names(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CARTON_MAX_MEMBERS", "CARTON_MAX_UNPACKED", "CARTON_MAX_RATIO"):
        monkeypatch.delenv(var, raising=False)
    assert Limits.from_env() == Limits() == Limits(200_000, 512 * 1024 * 1024, 20)


def test_each_limit_is_raised_by_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_MAX_MEMBERS", "7")
    monkeypatch.setenv("CARTON_MAX_UNPACKED", " 4096 ")
    monkeypatch.setenv("CARTON_MAX_RATIO", "")
    assert Limits.from_env() == Limits(members=7, unpacked=4096, ratio=20)


@pytest.mark.parametrize("value", ["0", "-1", "1e3", "1.5", "lots", "0x10", "+5"])
@pytest.mark.parametrize("var", ["CARTON_MAX_MEMBERS", "CARTON_MAX_UNPACKED",
                                 "CARTON_MAX_RATIO"])
def test_a_limit_that_is_not_a_positive_whole_number_is_refused(
        var: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(UnsafeMember) as caught:
        Limits.from_env()
    assert str(caught.value) == f"{var}={value!r} is not a positive whole number"


def test_a_superscript_digit_as_a_limit_is_refused_as_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_MAX_MEMBERS", "\u00b2")
    with pytest.raises(UnsafeMember, match="is not a positive whole number"):
        Limits.from_env()


def test_without_limits_the_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_MAX_MEMBERS", "1")
    with pytest.raises(UnsafeMember, match="2 members, more than 1"):
        check_members([member("a"), member("b")], 1000)
