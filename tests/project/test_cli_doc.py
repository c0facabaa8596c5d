"""docs/cli.md shows each command's `--help` as the program prints it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

HELPS = [
    ("carton_hook", ()), ("carton_hook", ("info",)), ("carton_hook", ("fetch",)),
    ("carton_hook", ("verify",)), ("carton_hook", ("cache",)),
    ("carton_hook", ("cache", "list")), ("carton_hook", ("cache", "prune")),
    ("carton_hook", ("cache", "clear")),
    ("carton_backend", ()), ("carton_backend", ("lock",)), ("carton_backend", ("pack",)),
    ("carton_backend", ("check-reproducible",)),
    ("carton_backend", ("export-pylock",)),
]


@pytest.mark.parametrize(("program", "command"), HELPS, ids=lambda v: " ".join(v) or "-")
def test_the_doc_shows_the_help_as_printed(program: str, command: tuple[str, ...]) -> None:
    env = {**os.environ, "COLUMNS": "80"}  # argparse wraps at the terminal's width
    proc = subprocess.run([sys.executable, "-m", program, *command, "--help"], env=env,
                          capture_output=True, text=True, check=True)
    shown = f"$ python -m {program} {' '.join((*command, '--help'))}\n{proc.stdout.rstrip()}\n```"
    assert normal(shown) in normal(DOC.read_text()), \
        f"docs/cli.md: update the block for {shown.splitlines()[0]}"


def normal(text: str) -> str:
    """The text with argparse's version differences taken out: 3.13 writes
    `-o, --outdir OUTDIR` where older versions write `-o OUTDIR, --outdir OUTDIR`, and
    wraps at other columns."""
    text = re.sub(r"(-\w) ([A-Z_]+), (--[\w-]+) \2\b", r"\1, \3 \2", text)
    return " ".join(text.split())
