"""What every benchmark of the suite shares: one row format, medians over repeats, peak memory of a
child process, and the paths of the repository.

Each benchmark module has ``run(quick: bool) -> Section``; ``benchmarks/run.py`` calls them in one
process run, one after another, so that the comparisons inside a section (gcm-qa against the LangChain
pipeline, ONNX against sentence-transformers, flat against HNSW) meet the same machine state.
Speed is measured here and printed; nothing here asserts a time (tests never do either).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gcm_qa.evaluation.gold import load_gold

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
GOLD = ROOT / "eval" / "gold.jsonl"
REPORT = ROOT / "corpus" / "gcm-regional-review-lac-2022.txt"


@dataclass
class Row:
    """One measured number. ``target``: the goal as text ('<= 3 s'), and ``ok`` whether it is met
    (None when there is no target); ``runs``: every repeat, the value being their median."""

    section: str
    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    note: str = ""
    runs: list[float] = field(default_factory=list)


@dataclass
class Section:
    """A benchmark's rows, and anything else it wants kept in latest.json (``details``)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, name: str, value: float, unit: str, target: str = "", ok: bool | None = None, note: str = "",
            runs: Sequence[float] = ()) -> Row:
        row = Row(self.name, name, float(value), unit, target, ok, note, [float(r) for r in runs])
        self.rows.append(row)
        return row

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 1), "rows": [asdict(r) for r in self.rows],
                "details": self.details}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), numpy's linear interpolation; NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else float("nan")


def gold_questions(limit: int | None = None) -> list[str]:
    """The gold set's questions, in file order (the first ``limit`` of them)."""
    found = [q.question for q in load_gold(GOLD)]
    return found[:limit] if limit else found


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call, and what it returned."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


@dataclass
class ChildRun:
    seconds: float
    peak_mb: float  # the child's peak resident memory
    stdout: str
    stderr: str
    returncode: int


def run_child(args: Sequence[str], env: dict[str, str] | None = None, cwd: Path = ROOT,
              timeout: float = 1800) -> ChildRun:
    """Run a command in a fresh process: its wall time and peak memory (RUSAGE_CHILDREN's maximum is
    over every child so far, so the command runs under /usr/bin/time-like accounting of its own:
    a wrapper Python process that reports its child's ru_maxrss)."""
    wrapper = ("import json,resource,subprocess,sys,time;t=time.perf_counter();"
               "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
               "s=time.perf_counter()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss;"
               "print(json.dumps({'s':s,'kb':r,'out':p.stdout,'err':p.stderr,'rc':p.returncode}))")
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run([PYTHON, "-c", wrapper, *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout, check=True)
    data = json.loads(done.stdout)
    return ChildRun(data["s"], data["kb"] / 1024, data["out"], data["err"], data["rc"])


def peak_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_rows(rows: Sequence[Row]) -> None:
    """The rows as a table, with each target and whether it is met, and the repeats."""
    for row in rows:
        mark = "" if row.ok is None else (" ok" if row.ok else " MISSED")
        target = f" (target {row.target}{mark})" if row.target else ""
        runs = f"  runs {[round(r, 2) for r in row.runs]}" if len(row.runs) > 1 else ""
        print(f"{row.name:60s} {row.value:10.4g} {row.unit:8s}{target}  {row.note}{runs}")


def main(run: Callable[[bool], Section]) -> Section:
    """One benchmark on its own (``python benchmarks/bench_x.py [--quick]``): run, print its rows."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats and questions")
    section = run(ap.parse_args().quick)
    print_rows(section.rows)
    return section
