"""Run commands side by side and time them: alternating (A B C C B A ...), so that a
noisy machine slows every contender alike, and report median, min and max."""

from __future__ import annotations

import os
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Command:
    """One way to run a workload. `prepare` runs before each timed run (untimed): a cold
    contender empties its cache there."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    shell: bool = False
    expect: str | None = None  # a line the output must contain


@dataclass
class Result:
    name: str
    seconds: list[float] = field(default_factory=list)
    peak_rss_kb: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment every contender runs in: this one, without
    PYTHONDONTWRITEBYTECODE (a user's machine writes .pyc files), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def run_settled(argv: Sequence[str], env: dict[str, str]) -> None:
    """Run `argv` untimed, and return once nothing of its process group runs any more:
    a carton's first run leaves its worker finishing the prefetch, and its compile-ahead
    helper, which must not overlap a timed run that follows."""
    wrapper = [os.environ.get("BENCH_PYTHON", "python3"), "-c", _MEASURE]
    subprocess.run([*wrapper, *argv], env=clean_env(env), check=True,
                   stdout=subprocess.DEVNULL)


def run_once(command: Command) -> tuple[float, int]:
    """Seconds of wall time, and the peak RSS (KiB) of the largest process it started."""
    if command.prepare is not None:
        command.prepare()
    # What the run before wrote (a cold run: thousands of files), or its prepare removed,
    # is written back now, untimed: otherwise the kernel does it during this run, which
    # then pays for the one before (cold runs of one contender took 2.3 s and 4.9 s).
    os.sync()
    wrapper = [os.environ.get("BENCH_PYTHON", "python3"), "-c", _MEASURE]
    argv = ["sh", "-c", command.argv[0]] if command.shell else list(command.argv)
    proc = subprocess.run([*wrapper, *argv], env=clean_env(command.env), capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{command.name} failed ({proc.returncode}): "
                           f"{proc.stdout[-1000:]} {proc.stderr[-2000:]}")
    *out, measured = proc.stdout.rstrip("\n").split("\n")
    if command.expect is not None and command.expect not in "\n".join(out):
        raise RuntimeError(f"{command.name}: expected {command.expect!r} in {out!r}")
    elapsed, rss = measured.split()
    return float(elapsed), int(rss)


# Runs the command as a child, timing only the child (not this wrapper's own start), and
# prints the seconds and the largest resident set among everything it started
# (RUSAGE_CHILDREN covers grandchildren that their parents waited for). Then, untimed,
# it waits until nothing of the child's process group runs any more (a carton's worker
# finishes the wheels it started after a model that did not import them has ended), so
# that no run overlaps the next one.
_MEASURE = (
    "import os, resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "p = subprocess.Popen(sys.argv[1:], start_new_session=True)\n"
    "p.wait()\n"
    "t = time.perf_counter() - t\n"
    "print(t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
    "deadline = time.monotonic() + 300\n"
    "while time.monotonic() < deadline:\n"
    "    try:\n"
    "        os.killpg(p.pid, 0)\n"
    "    except ProcessLookupError:\n"
    "        break\n"
    "    time.sleep(0.05)\n"
    "sys.exit(p.returncode)\n"
)


def alternate(commands: Sequence[Command], runs: int, warmup: int = 1) -> list[Result]:
    """Time each command `runs` times, interleaved, after `warmup` untimed rounds. Every
    other round goes the other way (A B C, then C B A), so that no command always runs
    right after the same one."""
    for _ in range(warmup):
        for command in commands:
            run_once(command)
    results = [Result(c.name) for c in commands]
    pairs = list(zip(commands, results, strict=True))
    for turn in range(runs):
        for command, result in (pairs if turn % 2 == 0 else pairs[::-1]):
            seconds, rss = run_once(command)
            result.seconds.append(seconds)
            result.peak_rss_kb.append(rss)
    return results
