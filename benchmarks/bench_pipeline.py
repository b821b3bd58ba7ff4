"""Benchmark: index build time, chunk count, and warm `ask` latency over the gold questions.

Runs on the configured (default) encoder from the user's model cache. A fresh clone's first build
reuses the shipped vectors (index/vectors); ``--embed-all`` measures a build that embeds everything,
as for a corpus without them. Prints numbers; asserts nothing (speed is measured here, never in tests).

    .venv/bin/python benchmarks/bench_pipeline.py [--repeat 1] [--embed-all]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from gcm_qa.engine import Engine
from gcm_qa.evaluation.gold import load_gold
from gcm_qa.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1, help="passes over the questions")
    ap.add_argument("--embed-all", action="store_true", help="build without the shipped vectors")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-"))
    try:
        data = Settings().model_dump(exclude_unset=True)
        data["paths"] = {"corpus_dir": ROOT / "corpus", "index_dir": work / "index",
                         "vectors_dir": work / "none" if args.embed_all else ROOT / "index" / "vectors"}
        engine = Engine(Settings.model_validate(data))
        for notice in engine.notices:
            print(notice)
        t = time.perf_counter()
        engine.embedder  # noqa: B018 - model load timed on its own
        load_s = time.perf_counter() - t
        report = engine.build()
        n_sentences = len(engine.index.sentence_spans)
        again = engine.build()
        questions = [q.question for q in load_gold(ROOT / "eval/gold.jsonl")]
        engine.ask("warm-up")
        totals, retrieve, answer = [], [], []
        for _ in range(args.repeat):
            for q in questions:
                a = engine.ask(q)
                totals.append(a.timings_ms["total"])
                retrieve.append(a.timings_ms["retrieve"])
                answer.append(a.timings_ms["answer"])
        q = statistics.quantiles(totals, n=20)
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"encoder               {engine.model.identity}")
        print(f"model load            {load_s:.1f} s")
        print(f"documents             {report.documents}")
        print(f"chunks                {report.chunks} ({n_sentences} sentences)")
        print(f"full build            {report.seconds:.1f} s ({report.embedded} passages + "
              f"{report.embedded_sentences} sentences embedded)")
        print(f"no-op rebuild         {again.seconds:.2f} s (up to date: {again.up_to_date})")
        print(f"ask, warm (n={len(totals)})  p50 {statistics.median(totals):.0f} ms, p95 {q[18]:.0f} ms "
              f"(retrieve p50 {statistics.median(retrieve):.0f} ms, answer p50 {statistics.median(answer):.0f} ms)")
        print(f"peak RSS              {rss_mb:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
