"""The markdown report of one benchmark run: machine, tables, and the targets with the
measured ratios (met or missed, by how much)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timing import Result

# Only the compiling of what the model imports, on one core: no first run that compiles on
# one core can be faster than this contender.
FLOOR = "plain venv, nothing compiled yet"
# The wheels installed, every check kept, by a bare second process with the standard
# library alone, then imported (installfloor.py): no first run that installs before it
# imports, keeps the checks, and compiles on one core, can be faster.
INSTALL_FLOOR = "checked install, then import"
# The same, that process then compiling ahead: such a first run on two cores.
INSTALL_FLOOR_AHEAD = "checked install, then import, compiling ahead"
# A warm start at its least: the model run from carton's warm cache by one module of the
# standard library (warmfloor.py), with `-m` as carton is: no warm start of a carton that
# keeps carton's checks and locks can be faster.
WARM_FLOOR = "warm floor, one stdlib module"
# The venv's warm runs made in turn with carton's second runs, each right after an untimed
# cold run as they are, which their target compares.
BESIDE_SECOND = "plain venv, after a cold run"


@dataclass
class Table:
    key: str
    title: str
    results: list[Result]
    base: str | None


@dataclass
class Report:
    machine: dict[str, str]
    runs: int
    cold_runs: int
    tables: list[Table] = field(default_factory=list)
    finder: dict[str, Any] = field(default_factory=dict)
    memory: list[Result] = field(default_factory=list)
    big_wheel_mb: float = 0.0
    seconds: float = 0.0
    crowd_downloads: int = 0  # the most downloads of one wheel in one crowd run
    part_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each part

    def add_table(self, key: str, title: str, results: list[Result], base: str | None) -> None:
        self.tables.append(Table(key, title, results, base))

    def has(self, key: str) -> bool:
        return any(t.key == key for t in self.tables)

    def has_result(self, key: str, name: str) -> bool:
        return any(r.name == name for t in self.tables if t.key == key for r in t.results)

    def result(self, key: str, name: str) -> Result:
        table = next(t for t in self.tables if t.key == key)
        return next(r for r in table.results if r.name == name)

    def markdown(self) -> str:
        out = [HEADER.format(runs=self.runs, cold_runs=self.cold_runs,
                             minutes=self.seconds / 60)]
        out.append("| | |\n|---|---|")
        out += [f"| {k} | {v} |" for k, v in self.machine.items()]
        out.append("")
        out.append("## Targets\n")
        out.append("| target | measured | |\n|---|---|---|")
        out += [f"| {t} | {m} | {'met' if ok else '**missed**'}{note} |"
                for t, m, ok, note in self.targets()]
        out.append("")
        for table in self.tables:
            out.append(f"## {table.title}\n")
            base = next((r for r in table.results if r.name == table.base), None)
            out.append(f"| contender | median | min | max | vs {table.base or '-'} | peak RSS |")
            out.append("|---|---|---|---|---|---|")
            for r in table.results:
                ratio = f"{r.median / base.median:.2f}x" if base else "-"
                out.append(f"| {r.name} | {_ms(r.median)} | {_ms(r.low)} | {_ms(r.high)} | "
                           f"{ratio} | {max(r.peak_rss_kb) / 1024:.0f} MB |")
            out.append("")
        if self.finder:
            f = self.finder
            out.append("## Workload: the finder alone\n")
            out.append(f"- a miss (a name no locked wheel provides), call included: "
                       f"{f['miss_ns']:.0f} ns")
            out.append(f"- {f['imports']} fresh standard library imports: "
                       f"{f['with_finder_us']:.1f} µs each with carton's finder on "
                       f"`sys.meta_path`, {f['without_finder_us']:.1f} µs without "
                       f"({f['with_finder_us'] / f['without_finder_us']:.3f}x)")
            out.append("")
        if self.memory:
            out.append(f"## Memory: a cold import of a {self.big_wheel_mb:.0f} MB wheel\n")
            out.append("| run | median | peak RSS (largest process) |\n|---|---|---|")
            for r in self.memory:
                out.append(f"| {r.name} | {_ms(r.median)} | "
                           f"{max(r.peak_rss_kb) / 1024:.0f} MB |")
            out.append("")
        if self.part_seconds:
            out.append("## Where the bench's time went\n")
            out.append("| part | wall time |\n|---|---|")
            out += [f"| {name} | {seconds / 60:.1f} min |"
                    for name, seconds in self.part_seconds.items()]
            out.append("")
        out.append(NOTES)
        analysis = Path(__file__).with_name("analysis.md")
        if analysis.is_file():
            out.append(analysis.read_text(encoding="utf-8"))
        return "\n".join(out).rstrip("\n") + "\n"

    def targets(self) -> list[tuple[str, str, bool, str]]:
        """(target, measured, met, a note): where FLOOR (the plain venv that only compiles
        what the model imports, on one core) was measured too, the note gives its ratio:
        a first run that compiles on import on one core cannot go below it (carton,
        compiling ahead on a second core, can)."""
        rows: list[tuple[str, str, bool, str]] = []

        def ratio_row(what: str, key: str, name: str, other: str, limit: float) -> None:
            if self.has_result(key, name) and self.has_result(key, other):
                mine, theirs = self.result(key, name).median, self.result(key, other).median
                note = ""
                if name.endswith(" cold") and self.has_result(key, FLOOR):
                    floor = self.result(key, FLOOR).median / theirs
                    note = (f"; compiling alone: {floor:.2f}x" if floor <= limit else
                            f"; below compiling alone ({FLOOR}: {floor:.2f}x)")
                if name.endswith(" cold") and self.has_result(key, INSTALL_FLOOR):
                    floor = self.result(key, INSTALL_FLOOR).median / theirs
                    note += f"; installing first, checked, stdlib only, one core: {floor:.2f}x"
                if name == "carton warm" and self.has_result(key, WARM_FLOOR):
                    floor = self.result(key, WARM_FLOOR).median / theirs
                    note += (f"; the warm floor: {floor:.2f}x" if floor <= limit else
                             f"; below the warm floor ({WARM_FLOOR}: {floor:.2f}x)")
                if name.endswith(" cold") and self.has_result(key, INSTALL_FLOOR_AHEAD):
                    floor = self.result(key, INSTALL_FLOOR_AHEAD).median / theirs
                    note += f"; the same, compiling ahead on the second core: {floor:.2f}x"
                rows.append((f"{what} <= {limit:.2f}x {other}",
                             f"{mine / theirs:.2f}x ({_ms(mine)} vs {_ms(theirs)})",
                             mine / theirs <= limit, note))

        uv = "uv pip install, then run"
        ratio_row("numpy + pandas cold", "numeric", "carton cold", uv, 0.8)
        ratio_row("numpy + pandas cold", "numeric", "carton cold", "shiv cold", 0.8)
        ratio_row("scikit-learn cold", "sklearn", "carton cold", uv, 0.8)
        ratio_row("torch cold", "torch", "carton cold", uv, 1.0)
        ratio_row("requests cold", "requests", "carton cold", "shiv cold", 0.8)
        for key in ("requests", "numeric", "sklearn", "torch"):
            ratio_row(f"second run after a cold run ({key})", key, "carton second run",
                      BESIDE_SECOND, 1.01)
        for key in ("requests", "numeric"):
            ratio_row(f"warm start ({key})", key, "carton warm", "plain venv", 1.01)
        if self.has("crowd"):
            table = next(t for t in self.tables if t.key == "crowd")
            one, many, warm = table.results[:3]
            # The floor: the same processes with nothing to install.
            floor = warm.median / one.median
            rows.append((f"{many.name}: <= 1.30x one cold start",
                         f"{many.median / one.median:.2f}x ({_ms(many.median)} vs "
                         f"{_ms(one.median)})", many.median / one.median <= 1.3,
                         f"; the floor: {floor:.2f}x" if floor <= 1.3 else
                         f"; below the floor ({warm.name}: {floor:.2f}x)"))
            rows.append((f"{many.name}: one download per wheel",
                         f"at most {self.crowd_downloads} per wheel", self.crowd_downloads == 1,
                         ""))
        ratio_row("laziness: 35 locked, one imported, cold", "laziness", "carton cold",
                  "carton cold, six alone", 1.10)
        if self.has("packing"):
            repack = self.result("packing", "re-pack, valid lock").median
            rows.append(("re-pack with a valid lock < 0.3 s", _ms(repack), repack < 0.3, ""))
        if self.finder:
            miss = self.finder["miss_ns"]
            rows.append(("a finder miss < 1 µs", f"{miss:.0f} ns", miss < 1000, ""))
            # What the finder adds to an import it does not own is one miss: its share of
            # a fresh import. (The A/B ratio of whole imports, in the section below, moves
            # by ±7% with nothing but a finder that returns None at once.)
            share = miss / 1000 / self.finder["without_finder_us"]
            ratio = self.finder["with_finder_us"] / self.finder["without_finder_us"]
            rows.append(("stdlib imports within noise (±5%)",
                         f"+{share:.2%} (one miss per import; A/B of whole imports: "
                         f"{ratio:.3f}x)", share <= 0.05, ""))
        if self.seconds:
            rows.append(("the whole bench < 15 min", f"{self.seconds / 60:.1f} min",
                         self.seconds < 15 * 60, ""))
        if self.memory:
            warm, cold = self.memory
            extra = (max(cold.peak_rss_kb) - max(warm.peak_rss_kb)) / 1024
            rows.append((f"cold import of a {self.big_wheel_mb:.0f} MB wheel: peak memory "
                         "within 100 MB of the warm run", f"+{extra:.0f} MB", extra <= 100, ""))
        return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


HEADER = """\
# Performance

Written by `nox -s bench` (`bench/bench.py`); the tables below are its output from one
run ({minutes:.1f} min). Every contender runs the same model code from the same wheels,
served by a loopback index (nothing in the measured part touches the internet), one
after the other in turn (A B C C B A ...), so that a noisy machine slows all of them
alike: {runs} warm runs each after one untimed round, {cold_runs} cold runs each with
every cache emptied before the run (fewer on the big workloads: half on numpy + pandas,
a third on scikit-learn, torch and the 16 processes, at least two; a third on pex's zip
mode and pip, far behind; twice as many on the laziness workload, five times the warm
runs on the start-up alone; at least five second runs, each after an untimed cold run).
An emptied cache is set aside, not deleted, until nothing is timed any more: on a disk
whose filesystem has no journal, creating a file right after thousands were deleted
costs up to twenty times more (`bench/aside.py`). Times are wall clock of
the command alone, until its own process ends; what a carton's worker still does after
that (it finishes the wheels it started, which the model did not import) ends before the
next run starts, untimed, and so does a `sync`: what one run wrote (a cold run creates
thousands of files) is on disk before the next starts, which would otherwise pay for it.
"peak RSS" is the largest resident set of any process the command started.

`PYTHONDONTWRITEBYTECODE` is removed from every contender's environment, as on a user's
machine: with it set, nothing writes `.pyc` files, and shiv's and the venv's warm starts
would compile their imports on every run.

## Machine
"""

NOTES = """\
## How each contender runs

- **plain venv**: `python -m venv --without-pip`, the wheels installed with pip, then
  `venv/bin/python model.py`. "nothing compiled yet" is the same venv with its
  packages' `__pycache__` folders removed before each run: no download and no unpacking,
  only the compiling of what the model imports, which every first run of a runner that
  compiles on import (carton, shiv) also pays. On one core it is the floor of such a
  first run ("compiling alone" in the targets' table); carton's first run compiles ahead
  on a second core, and can go below it. "checked install, then import" (the small
  workload) is a first run that gets its wheels before the model imports them, at its
  cheapest with every check kept (`bench/installfloor.py`): the model's process starts a
  bare second interpreter (standard library only) that downloads every wheel of the
  carton's lock at once from the same index, checks its sha256, checks each member's
  path and bytes against RECORD, writes them into a work folder and renames it into
  place; the model's process, which imported nothing for it, then runs the model. Left
  out against carton: selection, the cache's locks and fsync, installer, the plan, the
  finder and isolation ("installing first" in the targets' table). "compiling ahead":
  that second process then compiles what the model will import (carton's own walk)
  while the model's process imports: such a first run on two cores.
- **the interpreter** of carton, shiv and pex is a venv made the same way
  (`--without-pip`) holding carton and its dependencies only, copied from the bench's
  own environment (`bench/runtime.py`): none of them pays for the `.pth` files of the
  bench's tools (setuptools' imports `_distutils_hack` at every start).
- **carton**: `python -m carton_hook model.carton`; warm with its cache filled, cold with
  an empty `CARTON_HOME` (plan, extraction, download from the loopback index, checks,
  unpacking, and compiling what is imported, all included). "second run" is the run right
  after a cold run, with only what that run left (the `.pyc` files of what it imported),
  timed in turn with the venv's warm run made right after an untimed cold run of the
  carton too ("plain venv, after a cold run"), which its target compares it with;
  "N processes at once" starts N cold runs together on one empty cache and ends with the
  last. "warm floor, one stdlib module" (`bench/warmfloor.py`, run with `-m` as carton is,
  on carton's warm cache) is the least a warm start of the carton does that keeps
  carton's promises: it finds the plan as carton does (the model file's stat, its key),
  reads it, checks it is this model's and interpreter's, holds the shared locks that
  keep `cache prune` away, keeps the model from site-packages, answers the locked
  top-level names from their cache entries, points `sys.executable` at the prefix and
  calls the entrypoint; none of carton's other cases. What carton's warm run costs over
  it is carton's code and its layout in modules ("the warm floor" in the targets' table).
- **shiv**: a `.pyz` built with `shiv -e model:main`; cold with an empty `SHIV_ROOT`.
- **pex**: a `.pex` built with `-e model:main`, in its default zip mode and with `--venv`;
  cold with an empty `PEX_ROOT`. The zip mode runs on the `requests` workload only (on
  numpy + pandas it took 3 s warm and 8 s cold, a minute and a half of the bench).
- **pip / uv install, then run**: a fresh venv (`python -m venv --without-pip`, or
  `uv venv`), the wheels installed from the local wheelhouse (pip with `--no-cache-dir`,
  uv with an empty cache), then the model run once: what a user without a runner does.
  pip's runs on the `requests` workload only (15 s a run on numpy + pandas).
- **over a network**: the torch workload's cold runs with the index sending its files at
  most 50 MB/s, all downloads together (a fast connection, not the loopback): carton
  cold against uv downloading from the same index over the same link, with an empty
  cache, into a fresh venv, then the model.
"""
