"""docs/security.md stays true: every test it names exists, and every threat row of the
design's list (H1-H6, A1-A10, N1-N8, C1-C6, S1-S2) has a row with at least one test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
ROWS = ([f"H{i}" for i in range(1, 7)] + [f"A{i}" for i in range(1, 11)]
        + [f"N{i}" for i in range(1, 9)] + [f"C{i}" for i in range(1, 7)] + ["S1", "S2"])
# A test as the page names it: `folder/test_file::test_function[param]`, the file's path
# under tests/ without `.py`.
NAMED = r"`((?:\w+/)+test_\w+)::(\*|test_\w+)(?:\[([^\]]+)\])?"


def test_every_named_test_exists() -> None:
    # A name without its folder (`test_fetch::...`) would be checked against nothing.
    assert re.findall(r"`test_\w+::[^`]*", DOC) == []
    named = re.findall(NAMED, DOC)
    assert len(named) > 60
    for module, function, param in named:
        source = (ROOT / "tests" / f"{module}.py").read_text(encoding="utf-8")
        if function != "*":
            assert f"def {function}(" in source, f"{module}::{function}"
        if param:
            assert param in source, f"{module}::{function}[{param}]"


def test_every_threat_row_has_a_test() -> None:
    for row in ROWS:
        match = re.search(rf"^\| {row} \|(.*)$", DOC, re.MULTILINE)
        assert match, f"no row for {row}"
        assert re.search(NAMED, match.group(1)), f"{row} names no test"
