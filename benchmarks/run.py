"""The benchmark suite: every measurement of speed and scale in one run, side by side.

    .venv/bin/python benchmarks/run.py [--quick] [--only cold,query,encoding,build,incremental,scale]

Prints a table and writes ``benchmarks/results/latest.json`` (every number, every repeat, the
machine and the commit), ``benchmarks/results/summary.md`` and ``benchmarks/results/chart.png``.
Sections run one after another in this one run, so each comparison inside a section (ONNX against
sentence-transformers, gcm-qa against the LangChain tutorial pipeline, flat against HNSW) meets the
same machine; numbers are medians over repeats, comparisons are ratios. ``--quick`` takes fewer
repeats and questions: 6.6 minutes on 2 Zen 4 cores, 6 on Zen 5, some 18 on Zen 3. Nothing here asserts a time: a
missed target is printed and recorded (``ok: false``), as a benchmark should.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import ROOT, Section

RESULTS = Path(__file__).parent / "results"
SECTIONS = {"cold": "bench_cold", "query": "bench_query", "encoding": "bench_encoding", "build": "bench_build",
            "incremental": "bench_incremental", "scale": "bench_scale"}
PACKAGES = ("torch", "sentence-transformers", "transformers", "onnxruntime", "openvino", "tokenizers", "faiss-cpu",
            "bm25s", "langchain-community", "langchain-text-splitters")


def machine() -> dict[str, Any]:
    """The CPU by name, family and the vector units the encoder's speed hangs on (a VM's model name is
    often just 'AMD EPYC', and Zen 3 with AVX2 runs this encoder at a third of Zen 5's bf16 rate)."""
    from bench_build import cpu_info

    info = cpu_info()
    units = [name for name in ("avx512f", "avx512_bf16") if info.get(name)] or ["AVX2 at most"]
    cpu = f"{info.get('model', '')} (family {info.get('family')}, {', '.join(units)})"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout.strip()
    # "+changes": the code measured differs from the commit (documentation edits and earlier results do not count)
    code = ["src", "benchmarks", ":!benchmarks/results", "pyproject.toml", "constraints.txt"]
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *code], cwd=ROOT,
                                capture_output=True, text=True, check=False).stdout.strip())
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "commit": commit + ("+changes" if dirty else ""), "packages": versions}


def table(sections: list[Section]) -> str:
    lines = [f"{'section':16} {'measure':62} {'value':>10} {'unit':5} {'target':11} met"]
    for s in sections:
        for r in s.rows:
            met = "" if r.ok is None else ("yes" if r.ok else "NO")
            lines.append(f"{s.name[:16]:16} {r.name[:62]:62} {r.value:10.4g} {r.unit:5} {r.target:11} {met}")
    return "\n".join(lines)


def markdown(sections: list[Section], meta: dict[str, Any]) -> str:
    out = ["# Benchmarks", "",
           f"Measured {meta['date']} on {meta['machine']['cpu']} ({meta['machine']['cores']} cores), commit "
           f"{meta['machine']['commit']}, {'quick' if meta['quick'] else 'full'} mode, {meta['seconds']:.0f} s in all. "
           "Written by `benchmarks/run.py` (see `latest.json` for every repeat); each comparison ran in this "
           "same run. Values are medians over the repeats a row names.", "", "![chart](chart.png)", ""]
    for s in sections:
        out += [f"## {s.name} ({s.seconds:.0f} s)", "", "| measure | value | target | met | note |",
                "|---|---:|---|---|---|"]
        for r in s.rows:
            met = "" if r.ok is None else ("yes" if r.ok else "**no**")
            out.append(f"| {r.name} | {r.value:.4g} {r.unit} | {r.target} | {met} | {r.note} |")
        notes = s.details.get("notes")
        if notes:
            out += [""] + [f"- {n}" for n in notes]
        out.append("")
    return "\n".join(out)


def chart(sections: list[Section], path: Path) -> None:
    """One panel per section that describes a chart in its details: bars (``values``) or stacked
    bars (``stacks``), with the target as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [s.details["chart"] for s in sections if "chart" in s.details]
    if not specs:
        return
    fig, axes = plt.subplots(1, len(specs), figsize=(4.6 * len(specs), 4.2), squeeze=False)
    for ax, spec in zip(axes[0], specs, strict=True):
        labels = spec["labels"]
        if "stacks" in spec:
            bottom = [0.0] * len(labels)
            for part, values in spec["stacks"].items():
                ax.bar(labels, values, bottom=bottom, label=part)
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
            ax.legend(fontsize=8)
        else:
            ax.bar(labels, spec["values"], color="#4c72b0")
        if spec.get("target") is not None:
            ax.axhline(spec["target"], color="#c44e52", linestyle="--", linewidth=1, label="target")
        if spec.get("log"):
            ax.set_yscale("log")
        ax.set_title(spec["title"], fontsize=10)
        ax.set_ylabel(spec.get("unit", ""))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer repeats and questions (6.6 minutes on 2 Zen 4 cores, 18 on Zen 3)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for latest.json, summary.md and chart.png")
    args = ap.parse_args()
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    sections: list[Section] = []
    for name in wanted:
        print(f"== {name} ...", flush=True)
        t = time.perf_counter()
        try:
            section = importlib.import_module(SECTIONS[name]).run(args.quick)
        except Exception as exc:  # one broken section must not lose the others' numbers
            traceback.print_exc()
            section = Section(name, details={"error": f"{type(exc).__name__}: {exc}",
                                             "notes": [f"this section failed: {type(exc).__name__}: {exc}"]})
        section.seconds = time.perf_counter() - t
        sections.append(section)
        print(table([section]), flush=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "quick": args.quick, "seconds": time.perf_counter() - started,
            "machine": machine()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(
        json.dumps({**meta, "sections": [s.to_dict() for s in sections]}, indent=2), encoding="utf-8")
    (args.out / "summary.md").write_text(markdown(sections, meta), encoding="utf-8")
    chart(sections, args.out / "chart.png")
    print("\n" + table(sections))
    print(f"\n{meta['seconds']:.0f} s; wrote {args.out / 'latest.json'}, summary.md and chart.png")


if __name__ == "__main__":
    main()
