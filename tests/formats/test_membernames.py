"""carton_hook/formats/membernames.py: `name_problem`, why a member name is unsafe to write
on some OS (docs/security.md A1, A2, A6), or None for a name every OS writes as it is."""

from __future__ import annotations

import pytest

from carton_hook.formats.membernames import name_problem

ABSOLUTE = "absolute or empty path"
CHARACTER = "control character, backslash, colon, or one of * ? \" < > |"
INVISIBLE = "invisible or unassigned character"
COMPONENT = "empty, '.' or '..' path component"
TRAILING = "component ending in a dot or space"
DEVICE = "reserved device name on Windows"


@pytest.mark.parametrize("name", [
    "demo/__init__.py", "demo/", "demo/sub/", "a", "demo-1.0.dist-info/RECORD",
    "demo/.hidden", "demo/..x", "demo/x.y.z", "demo/with space.py", "demo/a=b.bin",
    "demo/caf\u00e9.py", "demo/\u540d\u524d.py", "demo/\U0001f40d.py",
    "demo/console.py", "demo/icon.py", "demo/com10.py", "demo/comx.py", "demo/lpt",
    "demo/com", "demo/nullable.py", "demo/auxiliary/x.py", "demo/con_x.py", "demo/con x.py",
    "demo/conin.py", "demo/prnt",
])
def test_a_name_every_os_writes_is_fine(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "/", "/x", "/etc/passwd", "//server/share"])
def test_an_empty_or_absolute_name_is_refused(name: str) -> None:
    assert name_problem(name) == ABSOLUTE


@pytest.mark.parametrize("name", [
    "demo/a\x00b", "demo/a\tb", "demo/a\nb", "demo/a\rb", "demo/a\x1fb", "demo/a\x7fb",
    "demo\\x.py", "demo\\..\\..\\x", "C:/x", "C:x", "demo/x:stream", "demo/a*b",
    "demo/a?b", 'demo/a"b', "demo/a<b", "demo/a>b", "demo/a|b",
])
def test_a_control_character_or_a_character_windows_refuses_is_refused(name: str) -> None:
    assert name_problem(name) == CHARACTER


@pytest.mark.parametrize("name", [
    "demo/a\x85b",  # a C1 control, beyond ASCII
    "demo/a\u200bb", "demo/\u202eyp.py", "demo/\ufeffx.py", "demo/a\u00adb",  # format
    "demo/\ue000.py",  # private use
    "demo/\u0378.py",  # unassigned
    "demo/\ud800.py",  # a lone surrogate
])
def test_an_invisible_or_unassigned_character_is_refused(name: str) -> None:
    assert name_problem(name) == INVISIBLE


@pytest.mark.parametrize("name", [
    "..", ".", "../evil.py", "demo/../../evil.py", "demo/./x.py", "./x", "demo//x.py",
    "demo/..", "demo/../",
])
def test_an_empty_dot_or_dot_dot_component_is_refused(name: str) -> None:
    assert name_problem(name) == COMPONENT


@pytest.mark.parametrize("name", ["demo/x.", "demo/x ", "demo./x.py", "demo /x.py", "...",
                                  "demo/x. ", "demo/dir./"])
def test_a_component_ending_in_a_dot_or_a_space_is_refused(name: str) -> None:
    assert name_problem(name) == TRAILING


@pytest.mark.parametrize("name", [
    "con", "CON", "demo/con.py", "demo/Con.tar.gz", "demo/aux.txt", "demo/nul", "demo/prn.x",
    "demo/com0", "demo/COM1.py", "demo/com9", "demo/lpt1", "demo/LPT9.txt", "demo/com\u00b9",
    "demo/lpt\u00b3.py", "demo/conin$", "demo/CONOUT$.log", "demo/con .py", "demo/con  .py",
    "aux/x.py", "demo/nul/", "demo/lpt2/sub/x.py",
])
def test_a_windows_device_name_is_refused_in_any_folder_and_with_any_extension(
        name: str) -> None:
    assert name_problem(name) == DEVICE


def test_trailing_slashes_of_a_folder_name_are_not_components() -> None:
    assert name_problem("demo/sub//") is None
    assert name_problem("demo//sub/") == COMPONENT
