"""Benchmark: each packaged encoder's load time, passages per second, query latency, memory, and
(where it computes in bfloat16) the cosine of its vectors to float32's.

Each encoder runs in its own process (so peak memory is its own), on the report's own passages
and the gold questions. Prints a table; asserts nothing (speed is measured here, never in tests).

    .venv/bin/python benchmarks/bench_encoders.py [--passages 160] [--models embeddinggemma-300m ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(model: str, n_passages: int, threads: list[int]) -> dict[str, float]:
    import torch

    from gcm_qa.embedder import load_embedder
    from gcm_qa.evaluation.gold import load_gold
    from gcm_qa.index_store import prepare_document
    from gcm_qa.settings import EmbeddingSettings, Settings

    settings = Settings()
    started = time.perf_counter()
    embedder = load_embedder(EmbeddingSettings(model=f"packaged:{model}"), settings.paths.cache_dir)
    load_s = time.perf_counter() - started
    chunks = prepare_document(ROOT / "corpus" / "gcm-regional-review-lac-2022.txt", None, settings).chunks
    texts = [c.embed_text() for c in chunks][:n_passages]
    questions = [q.question for q in load_gold(ROOT / "eval" / "gold.jsonl")][:60]
    out: dict[str, float] = {"load_s": load_s, "passages": len(texts),
                             "mean_chars": statistics.mean(len(t) for t in texts)}
    for n in threads:
        torch.set_num_threads(n)
        embedder.encode_queries(questions[:3])  # warm-up
        times = []
        for q in questions:
            t = time.perf_counter()
            embedder.encode_queries([q])
            times.append((time.perf_counter() - t) * 1000)
        out[f"query_p50_ms_{n}t"] = statistics.median(times)
        out[f"query_p95_ms_{n}t"] = statistics.quantiles(times, n=20)[18]
        t = time.perf_counter()
        embedder.encode_documents(texts)
        out[f"passages_per_s_{n}t"] = len(texts) / (time.perf_counter() - t)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the precision actually used against float32, on these passages (1.0 when it is float32)
    out["cos_fp32_min"] = 1.0
    if getattr(embedder, "dtype", torch.float32) != torch.float32:
        fp32 = load_embedder(EmbeddingSettings(model=f"packaged:{model}", dtype="float32"), settings.paths.cache_dir)
        a, b = embedder.encode_documents(texts), fp32.encode_documents(texts)
        out["cos_fp32_min"] = float((a * b).sum(axis=1).min())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["all-MiniLM-L6-v2", "multilingual-e5-small", "embeddinggemma-300m"])
    ap.add_argument("--passages", type=int, default=160, help="report passages embedded per encoder")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.passages, args.threads)))
        return
    rows = {}
    for model in args.models:
        cmd = [sys.executable, __file__, "--child", model, "--passages", str(args.passages),
               "--threads", *map(str, args.threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{model}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        rows[model] = json.loads(done.stdout.strip().splitlines()[-1])
    cols = ["load_s", *[f"{k}_{n}t" for n in args.threads for k in ("query_p50_ms", "query_p95_ms",
                                                                    "passages_per_s")], "peak_rss_mb", "cos_fp32_min"]
    print(f"{'model':24s} " + " ".join(f"{c:>18s}" for c in cols))
    for model, r in rows.items():
        print(f"{model:24s} " + " ".join(f"{r[c]:18.4f}" if c.startswith("cos") else f"{r[c]:18.1f}" for c in cols))
    if rows:
        first = next(iter(rows.values()))
        print(f"({first['passages']} report passages of {first['mean_chars']:.0f} characters on average; "
              f"60 gold questions one at a time)")


if __name__ == "__main__":
    main()
