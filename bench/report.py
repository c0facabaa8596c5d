"""The markdown report of one benchmark run: machine, tables, and the targets with the
measured ratios (met or missed, by how much)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timing import Result


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
        out += [f"| {t} | {m} | {'met' if ok else '**missed**'} |" for t, m, ok in self.targets()]
        out.append("")
        for table in self.tables:
            out.append(f"## {table.title}\n")
            base = next((r for r in table.results if r.name == table.base), None)
            out.append("| contender | median | min | max | vs plain venv | peak RSS |")
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
        out.append(NOTES)
        analysis = Path(__file__).with_name("analysis.md")
        if analysis.is_file():
            out.append(analysis.read_text(encoding="utf-8"))
        return "\n".join(out).rstrip("\n") + "\n"

    def targets(self) -> list[tuple[str, str, bool]]:
        rows: list[tuple[str, str, bool]] = []
        for key in ("requests", "numeric"):
            if not self.has(key):
                continue
            ratio = (self.result(key, "carton warm").median
                     / self.result(key, "plain venv").median)
            rows.append((f"warm start ({key}) <= 1.01x the plain venv", f"{ratio:.3f}x",
                         ratio <= 1.01))
        if self.has("requests"):
            cold = self.result("requests", "carton cold").median
            shiv = self.result("requests", "shiv cold").median
            uv = self.result("requests", "uv pip install, then run").median
            rows.append(("cold start (requests) <= 0.6x shiv's cold start",
                         f"{cold / shiv:.2f}x ({_ms(cold)} vs {_ms(shiv)})", cold / shiv <= 0.6))
            rows.append(("cold start (requests) <= uv's install-then-run",
                         f"{cold / uv:.2f}x ({_ms(cold)} vs {_ms(uv)})", cold <= uv))
        if self.has("laziness"):
            cold = self.result("laziness", "carton cold").median
            warm = self.result("laziness", "carton warm").median
            shiv = self.result("laziness", "shiv cold").median
            rows.append(("laziness: cold <= 1.15x the warm start of the same carton",
                         f"{cold / warm:.2f}x", cold / warm <= 1.15))
            rows.append(("laziness: cold <= 0.15x shiv's cold start", f"{cold / shiv:.2f}x",
                         cold / shiv <= 0.15))
            if self.has_result("laziness", "carton cold, six alone"):
                alone = self.result("laziness", "carton cold, six alone").median
                rows.append(("laziness: 34 unused packages add <= 15% to a cold start "
                             "(against the same model locking six alone)",
                             f"{cold / alone:.2f}x ({_ms(cold)} vs {_ms(alone)})",
                             cold / alone <= 1.15))
        if self.has("packing"):
            repack = self.result("packing", "re-pack, valid lock").median
            rows.append(("re-pack with a valid lock < 0.3 s", _ms(repack), repack < 0.3))
        if self.finder:
            miss = self.finder["miss_ns"]
            rows.append(("a finder miss < 1 µs", f"{miss:.0f} ns", miss < 1000))
            ratio = self.finder["with_finder_us"] / self.finder["without_finder_us"]
            rows.append(("stdlib imports within noise (±5%)", f"{ratio:.3f}x",
                         abs(ratio - 1) <= 0.05))
        if self.memory:
            warm, cold = self.memory
            extra = (max(cold.peak_rss_kb) - max(warm.peak_rss_kb)) / 1024
            rows.append((f"cold import of a {self.big_wheel_mb:.0f} MB wheel: peak memory "
                         "within 100 MB of the warm run", f"+{extra:.0f} MB", extra <= 100))
        return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


HEADER = """\
# Performance

Written by `nox -s bench` (`bench/bench.py`); the tables below are its output from one
run ({minutes:.1f} min). Every contender runs the same model code from the same wheels,
served by a loopback index (nothing in the measured part touches the internet), one after
the other in turn (A B C A B C ...), so that a noisy machine slows all of them alike:
{runs} warm runs each after one untimed round, {cold_runs} cold runs each with every cache
emptied before the run. Times are wall clock of the command alone; "peak RSS" is the
largest resident set of any process the command started.

`PYTHONDONTWRITEBYTECODE` is removed from every contender's environment, as on a user's
machine: with it set, nothing writes `.pyc` files, and shiv's and the venv's warm starts
would compile their imports on every run.

## Machine
"""

NOTES = """\
## How each contender runs

- **plain venv**: `python -m venv --without-pip`, the wheels installed with pip, then
  `venv/bin/python model.py`.
- **carton**: `python -m carton_hook model.carton`; warm with its cache filled, cold with
  an empty `CARTON_HOME` (plan, extraction, download from the loopback index, checks,
  unpacking and compiling all included).
- **shiv**: a `.pyz` built with `shiv -e model:main`; cold with an empty `SHIV_ROOT`.
- **pex**: a `.pex` built with `-e model:main`, in its default zip mode and with `--venv`;
  cold with an empty `PEX_ROOT`.
- **pip / uv install, then run**: a fresh venv (`python -m venv --without-pip`, or
  `uv venv`), the wheels installed from the local wheelhouse (pip with `--no-cache-dir`,
  uv with an empty cache), then the model run once: what a user without a runner does.
"""
