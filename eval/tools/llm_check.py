"""What the sentence check catches in a real small model's answers (issue 14).

Serves SmolLM2-135M on loopback (``make llm-local``), asks it the tuning set's questions through
``Engine.ask(answerer="llm")``, and tallies what happened to each answer (shown, shown with marked
sentences, replaced by the extractive answer, abstained) and why each sentence failed, with
examples; on the unanswerable questions, whether an invented answer got through. ``--eval`` also
runs ``gcm-qa eval --answerer llm`` against the same server (the harness's own metrics).

    .venv/bin/python eval/tools/llm_check.py [--limit 60] [--eval]
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
from pathlib import Path

from gcm_qa import local_llm
from gcm_qa.engine import Engine
from gcm_qa.evaluation.gold import load_gold
from gcm_qa.settings import Settings


def kind(reason: str) -> str:
    return re.split(r"[ (]", reason.replace("cites passage", "cites-missing"), maxsplit=1)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=60, help="questions of the tuning split (unanswerable ones all)")
    ap.add_argument("--eval", action="store_true", help="also run gcm-qa eval --answerer llm on the tuning split")
    args = ap.parse_args()
    gguf = local_llm.location("smollm2", Settings().paths.cache_dir)
    if gguf is None:
        sys.exit("SmolLM2 is not installed: make llm-local")
    questions = load_gold(Path("eval/gold.jsonl"), "tune")
    chosen = [q for q in questions if q.type != "unanswerable"][: args.limit]
    chosen += [q for q in questions if q.type == "unanswerable"]
    with local_llm.serve(gguf) as url:
        settings = Settings.model_validate({"llm": {"base_url": url, "model": "smollm2", "timeout": 120.0}})
        engine = Engine(settings)
        outcome: collections.Counter[str] = collections.Counter()
        reasons: collections.Counter[str] = collections.Counter()
        examples: dict[str, str] = {}
        sentences = unsupported = 0
        invented_unanswerable = []
        for q in chosen:
            a = engine.ask(q.question, answerer="llm")
            label = ("abstained" if a.abstained else "extractive, " + (a.notice or "")[:60] if a.answerer != "llm"
                     else "shown, with marked sentences" if a.unsupported else "shown, every sentence supported")
            outcome[label.split(":")[0]] += 1
            for u in a.unsupported:
                for r in u["reasons"]:
                    reasons[kind(r)] += 1
                    examples.setdefault(kind(r), f"{u['sentence'][:140]}  <- {r}")
            unsupported += len(a.unsupported)
            sentences += len(a.unsupported) + (len(re.findall(r"\[\d+\]", a.answer)) if a.answerer == "llm" else 0)
            if q.type == "unanswerable" and a.answerer == "llm" and not a.abstained:
                invented_unanswerable.append(f"{q.question[:80]} -> {a.answer[:120]}")
        print(f"{len(chosen)} tuning questions ({sum(q.type == 'unanswerable' for q in chosen)} unanswerable), "
              f"SmolLM2-135M-Instruct Q4_1 on 2 CPU threads")
        for label, n in outcome.most_common():
            print(f"  {n:3d}  {label}")
        print("unsupported sentences by first word of the reason:")
        for r, n in reasons.most_common():
            print(f"  {n:3d}  {r}: e.g. {examples[r]}")
        print(f"unanswerable questions answered by the model and shown: {len(invented_unanswerable)}")
        for line in invented_unanswerable[:5]:
            print(f"  {line}")
        if args.eval:
            subprocess.run([sys.executable, "-m", "gcm_qa.cli", "eval", "--split", "tune", "--answerer", "llm",
                            "--llm-url", url, "--llm-model", "smollm2", "--llm-timeout", "120", "--no-baselines",
                            "--out", "eval/results/llm", "--thresholds", "/dev/null"], check=False)


if __name__ == "__main__":
    main()
