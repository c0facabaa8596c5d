"""A seeded fuzzer of cartons: byte flips, truncation, member edits, lock and carton.toml
edits, each run through `python -m carton_hook`, `python model.carton`, `info` and
`verify`. Every run must end cleanly (the model's own output, or `verify` and `info`
reporting) or with one line of error and exit status 1: never a traceback, never a hang.

The default test run fuzzes a few cases; `nox -s stress` runs CARTON_FUZZ_CASES of them
(300 unless set) and writes its figures to CARTON_STRESS_REPORT's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from carton_hook.formats.archive import DAMAGED

from ..factory import make_wheel
from ..indexserver import PackageIndex

SEED = int(os.environ.get("CARTON_FUZZ_SEED", "20261202"))
FAST_CASES = 12
STRESS_CASES = int(os.environ.get("CARTON_FUZZ_CASES", "300"))
LOCK = "model/.carton/carton.lock"
TIMEOUT = 120
REPORT = os.environ.get("CARTON_STRESS_REPORT")  # read before the fixtures clear CARTON_*


def _rewrite(members: list[tuple[zipfile.ZipInfo, bytes]], manifest: bool) -> bytes:
    """The archive of `members`; with `manifest`, MANIFEST rewritten to match them (so
    that only the edit itself is wrong)."""
    import io

    if manifest:
        lines = "".join(f"{i.filename}={hashlib.sha256(d).hexdigest()}\n"
                        for i, d in sorted(members, key=lambda m: m[0].filename)
                        if i.filename not in ("MANIFEST", "carton.toml"))
        members = [(i, lines.encode() if i.filename == "MANIFEST" else d) for i, d in members]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info, data in members:
            zf.writestr(info, data)
    return out.getvalue()


def _nasty(rng: random.Random) -> Any:
    """A JSON value the lock reader must refuse or take, never crash on."""
    choice = rng.randrange(9)
    if choice == 0:  # nesting deeper than any parser's recursion: written out by _deep
        return f"__deep__{rng.choice([50, 5000, 100_000])}"
    return [None, -1, 0, 2**70, "", "x\x00y\n", "../../etc/passwd", {"a": []}][choice - 1]


def _deep(text: str) -> str:
    """`"__deep__N"` in JSON text becomes N nested arrays."""
    import re

    return re.sub(r'"__deep__(\d+)"', lambda m: "[" * int(m[1]) + "]" * int(m[1]), text)


def _edit_json(rng: random.Random, tree: Any) -> None:
    """Replace one value somewhere in `tree` with a nasty one."""
    node: Any = tree
    parent: Any = None
    key: Any = None
    for _ in range(rng.randrange(1, 8)):
        children = (list(node.items()) if isinstance(node, dict) else list(enumerate(node))
                    if isinstance(node, list) else [])
        if not children:
            break
        key, child = rng.choice(children)
        parent = node
        if not isinstance(child, (dict, list)) or rng.random() < 0.3:
            break
        node = child
    if parent is not None:
        parent[key] = _nasty(rng)


def mutate(raw: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of the carton `raw`: its kind, and the new bytes."""
    kind = rng.choice(["flip", "flip", "truncate", "member", "lock", "lock", "toml"])
    if kind == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return kind, bytes(data)
    if kind == "truncate":
        return kind, raw[:rng.randrange(len(raw))]
    import io

    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    names = [i.filename for i, _ in members]
    if kind == "member":
        index = rng.randrange(len(members))
        info, data = members[index]
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        members[index] = (info, garbage if rng.random() < 0.5 else data[: len(data) // 2])
        return kind, _rewrite(members, manifest=rng.random() < 0.7)
    if kind == "lock":
        index = names.index(LOCK)
        info, data = members[index]
        tree = json.loads(data)
        _edit_json(rng, tree)
        members[index] = (info, _deep(json.dumps(tree)).encode())
        return kind, _rewrite(members, manifest=True)
    index = names.index("carton.toml")
    info, data = members[index]
    lines = data.decode().splitlines()
    line = rng.randrange(len(lines))
    lines[line] = rng.choice([
        lines[line].split("=")[0] + "= " + "[" * 100_000,
        lines[line].split("=")[0] + "= {a = {b = {c = 1}}}",
        lines[line] + "\x00", "", "[table]", lines[line].replace('"', "'"),
        lines[line].split("=")[0] + '= "' + "é" * 3 + '"',
    ])
    members[index] = (info, "\n".join(lines).encode())
    return kind, _rewrite(members, manifest=False)


COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "run": lambda c: [sys.executable, "-m", "carton_hook", str(c)],
    "executable": lambda c: [sys.executable, str(c)],
    "info": lambda c: [sys.executable, "-m", "carton_hook", "info", str(c)],
    "verify": lambda c: [sys.executable, "-m", "carton_hook", "verify", str(c)],
}


def judge(command: str, proc: subprocess.CompletedProcess[str],
          main_changed: bool = False) -> str | None:
    """What is wrong with how a run ended, or None. `main_changed`: the archive's
    `__main__.py` is damaged, which Python reads (without checking its CRC) and runs
    before any of carton's code can check anything: how it fails is Python's."""
    err = proc.stderr
    last = (err.strip().splitlines() or [""])[-1]
    if command == "executable" and proc.returncode and main_changed:
        return None  # carton's bootstrap itself is damaged: whatever it does is not carton's
    pythons_own = ("can't find '__main__' module" in err
                   or last.startswith(("SyntaxError", "ValueError: source")))
    if command == "executable" and proc.returncode and "carton_hook" not in err and pythons_own:
        return None  # Python could not read or run the file as a zip application
    if "Traceback (most recent call last)" in err:
        frames = [line for line in err.splitlines() if line.lstrip().startswith('File "')]
        if frames and f"{os.sep}models{os.sep}" in frames[-1]:
            return None  # the model's own code failed (an edit MANIFEST was made to match)
        return "traceback: " + err.strip().splitlines()[-1][:300]
    if proc.returncode == 0:
        if command in ("run", "executable") and proc.stdout != "fuzzed model ran\n":
            return f"exit 0 without the model's output: {proc.stdout!r}"
        return None
    if command == "verify" and proc.returncode == 1 and not err.strip():
        return None  # the report is on stdout
    lines = err.strip().splitlines()
    if proc.returncode != 1 or len(lines) != 1 or not lines[0].startswith("carton: "):
        return f"exit {proc.returncode}, stderr {err[-400:]!r}"
    return None


@pytest.fixture
def base_carton(tmp_path: Path, pypi: PackageIndex, private: PackageIndex,
                build_carton: Callable[..., Path]) -> Path:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0",
                        {"alpha/__init__.py": "VALUE = 'alpha'\n"}))
    private.add(make_wheel(tmp_path / "w", "beta", "1.0", {"beta/__init__.py": ""}))
    return build_carton("alpha\nbeta\n", {
        "model.py": "import alpha, beta\ndef main():\n    print('fuzzed model ran')\n",
        "data/weights.txt": "0.5\n" * 200})


def _main_of(raw: bytes) -> bytes | None:
    """The bytes of the archive's `__main__.py` as its local header says (what zipimport
    reads), or None where they cannot be found."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            info = zf.getinfo("__main__.py")
        start = info.header_offset
        header = raw[start:start + 30]
        skip = int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
        return raw[start:start + 30 + skip + info.compress_size]
    except (KeyError, ValueError, IndexError, *DAMAGED):  # as the runtime reads archives
        return None


def fuzz(base: Path, tmp_path: Path, env: dict[str, str], cases: int) -> dict[str, Any]:
    raw = base.read_bytes()
    original_main = _main_of(raw)
    rng = random.Random(SEED)
    jobs = []
    for number in range(cases):
        kind, data = mutate(raw, rng)
        path = tmp_path / "fuzz" / f"{number:04d}-{kind}" / base.name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        changed = _main_of(data) != original_main
        jobs += [(path, kind, command, changed) for command in COMMANDS]

    def run(job: tuple[Path, str, str, bool]) -> tuple[Path, str, str, str | None]:
        path, kind, command, changed = job
        try:
            proc = subprocess.run(COMMANDS[command](path), env=env, capture_output=True,
                                  text=True, check=False, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            return path, kind, command, f"no end within {TIMEOUT} s"
        return path, kind, command, judge(command, proc, changed)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, jobs))
    bad = [f"{p.parent.name} {c}: {problem}" for p, _, c, problem in results if problem]
    for line in bad:
        print(line)
    kinds: dict[str, int] = {}
    for path in {p for p, _, _, _ in results}:
        kind = path.parent.name.split("-", 1)[1]
        kinds[kind] = kinds.get(kind, 0) + 1
    tracebacks = sum(1 for r in results if (r[3] or "").startswith("traceback"))
    return {"seed": SEED, "cases": cases, "runs": len(results), "kinds": kinds,
            "tracebacks": tracebacks, "bad": bad}


def test_fuzzed_cartons_end_cleanly_or_in_one_line(
        base_carton: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    figures = fuzz(base_carton, tmp_path, hermetic_env, FAST_CASES)
    assert figures["bad"] == [], figures["bad"][:10]


@pytest.mark.stress
def test_many_fuzzed_cartons_end_cleanly_or_in_one_line(
        base_carton: Path, tmp_path: Path, hermetic_env: dict[str, str]) -> None:
    figures = fuzz(base_carton, tmp_path, hermetic_env, STRESS_CASES)
    if REPORT:
        Path(REPORT).with_name("fuzz-report.json").write_text(json.dumps(figures, indent=1))
    assert figures["bad"] == [], figures["bad"][:10]
