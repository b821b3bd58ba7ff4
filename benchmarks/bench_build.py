"""Benchmark: building the index of the shipped report, gcm-qa against the LangChain tutorial pipeline.

Both pipelines embed everything with the same encoder (the configured EmbeddingGemma, loaded by
gcm-qa's own loader), each in a child process of its own so its peak memory is its own, and alternate
within a repeat (gcm-qa, gcm-qa through ONNX Runtime, LangChain, gcm-qa ...). gcm-qa runs it as it is
configured (its ONNX export compiled by OpenVINO, bfloat16 where the CPU has it natively) and, as
before OpenVINO came in, with ``embedding.build_runtime = "onnxruntime"`` (float32); the tutorial as
the tutorial does, through sentence-transformers (bfloat16 on a CPU with native bf16, else float32):

* gcm-qa: ``Engine(settings).build()`` over a corpus folder holding the report with the shipped
  manifest and profile, a fresh ``index_dir`` and ``vectors_dir`` pointing at an empty folder, so
  every chunk and every sentence is embedded (chunks AND sentences: both counts are reported).
* LangChain tutorial: the raw extracted text, ``RecursiveCharacterTextSplitter(1000, 200)``, and
  ``FAISS.from_texts`` over a minimal ``langchain_core`` ``Embeddings`` that wraps the very same
  sentence-transformers model object, with its 'document' prompt (langchain-huggingface is not
  used: it pins huggingface-hub below 2).

Seconds are the build alone (the model is loaded first and timed apart); ``embed`` seconds are the
time inside the encoder's calls. The compute limit: FLOPs per text = 2 x non-embedding parameters x
tokens + 4 x layers x tokens^2 x hidden (tokens counted with the model's tokenizer over the texts
actually embedded, prompt included, padding not counted), against this CPU's fp32 peak and against
a measured matmul rate (the practical ceiling); assumptions are in ``details``.

Quick mode embeds a fixed prefix of the report (the first quarter, cut at a paragraph break) for both
pipelines, once each; full mode the whole report, 2 repeats.

    .venv/bin/python benchmarks/bench_build.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PYTHON, REPORT, ROOT, Section, median, print_rows, run_child

SECTION = "index build"
PREFIX_FRACTION = 0.25  # of the report's characters, in quick mode
FMA_PIPES = 2  # Zen 3 to Zen 5 and recent Intel cores: two FMA pipes per core, 256 or 512 bits wide
PIPELINES = ("gcm-qa", "gcm-qa-onnxruntime", "langchain")  # the second: gcm-qa before OpenVINO, same run


# --- children ------------------------------------------------------------------------------------


def _token_stats(embedder: Any, texts: list[str]) -> dict[str, float]:
    """Tokens per text as the encoder sees it ('document' prompt prepended, truncated at its max length)."""
    if embedder.onnx is not None:
        onnx = embedder.onnx
        prefixed = [onnx.prompts.get("document", "") + t for t in texts]
        lengths = [len(ids) for ids in onnx.token_ids(prefixed)]
    else:
        model = embedder.model
        limit = int(model.max_seq_length or 10**9)
        prefixed = [model.prompts.get("document", "") + t for t in texts]
        lengths = [min(len(ids), limit) for ids in model.tokenizer(prefixed)["input_ids"]]
    return {"texts": len(lengths), "tokens": float(sum(lengths)), "tokens_sq": float(sum(n * n for n in lengths))}


def _runtime(embedder: Any) -> str:
    """What ran the build's texts (asked after the build: OpenVINO is compiled on the first large call)."""
    if embedder.onnx is not None and embedder.onnx.openvino is not None:
        return f"OpenVINO {embedder.onnx.openvino.precision} (compiling included)"
    if embedder.onnx is not None:
        return "ONNX Runtime float32"
    return f"sentence-transformers {str(embedder.dtype).removeprefix('torch.')}"


def _model_shape(model: Any) -> dict[str, float]:
    """Parameters that take part in every token's compute (all but the token-embedding table), the
    number of layers and the hidden size."""
    transformer = model[0].auto_model
    config = transformer.config
    embedding = transformer.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())
    return {"params": float(total), "embedding_params": float(embedding),
            "non_embedding_params": float(total - embedding), "layers": float(config.num_hidden_layers),
            "hidden": float(config.hidden_size),
            "max_seq_length": float(model.max_seq_length)}


def child_gcm(corpus_dir: Path, work: Path, build_runtime: str | None = None) -> dict[str, Any]:
    from gcm_qa.engine import Engine
    from gcm_qa.settings import Settings

    empty = work / "no-vectors"
    empty.mkdir(parents=True)
    data = Settings().model_dump(exclude_unset=True)
    data["paths"] = {"corpus_dir": corpus_dir, "index_dir": work / "index", "vectors_dir": empty}
    if build_runtime:
        data["embedding"] = {**data.get("embedding", {}), "build_runtime": build_runtime}
    engine = Engine(Settings.model_validate(data))
    started = time.perf_counter()
    embedder: Any = engine.embedder
    if embedder.onnx is None:
        embedder.model  # noqa: B018 - loaded before the build, so that load and build are timed apart
    load_s = time.perf_counter() - started
    embed_s = 0.0
    encode = embedder.encode_documents

    def timed_encode(texts: Any, progress: bool = False, build: bool = False) -> Any:
        nonlocal embed_s
        t = time.perf_counter()
        out = encode(texts, progress, build)
        embed_s += time.perf_counter() - t
        return out

    embedder.encode_documents = timed_encode  # type: ignore[method-assign]
    started = time.perf_counter()
    report = engine.build()
    build_s = time.perf_counter() - started
    index = engine.index
    chunk_texts = [c.embed_text() for c in index.chunks]
    sentences = [index.chunks[int(ci)].text[int(a):int(b)] for ci, a, b in index.sentence_spans]
    return {"load_s": load_s, "build_s": build_s, "embed_s": embed_s, "chunks": report.chunks,
            "embedded_chunks": report.embedded, "embedded_sentences": report.embedded_sentences,
            "runtime": _runtime(embedder), "batch_size": embedder.batch_size,
            "chunk_tokens": _token_stats(embedder, list(dict.fromkeys(chunk_texts))),
            "sentence_tokens": _token_stats(embedder, [s for s in dict.fromkeys(sentences)
                                                       if s not in set(chunk_texts)])}


def child_langchain(corpus_dir: Path) -> dict[str, Any]:
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from gcm_qa.embedder import load_embedder
    from gcm_qa.loaders import load
    from gcm_qa.settings import Settings

    settings = Settings()
    started = time.perf_counter()
    tutorial = settings.embedding.model_copy(update={"backend": "sentence-transformers"})  # as the tutorial runs it
    embedder: Any = load_embedder(tutorial, settings.paths.cache_dir)
    model = embedder.model
    load_s = time.perf_counter() - started
    batch_size = settings.embedding.batch_size
    timing = {"embed_s": 0.0}

    class STEmbeddings(Embeddings):
        """The sentence-transformers model object, as LangChain's embeddings interface."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            t = time.perf_counter()
            vectors = model.encode(texts, prompt_name="document", batch_size=batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True)
            timing["embed_s"] += time.perf_counter() - t
            return vectors.astype("float32").tolist()

        def embed_query(self, text: str) -> list[float]:
            return model.encode([text], prompt_name="query", normalize_embeddings=True)[0].astype("float32").tolist()

    started = time.perf_counter()
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    texts: list[str] = []
    for path in sorted(corpus_dir.glob("*.txt")):
        raw = load(path)
        texts.extend(splitter.split_text("\n".join(t for _, t in raw.pages)))
    store = FAISS.from_texts(texts, STEmbeddings())
    build_s = time.perf_counter() - started
    return {"load_s": load_s, "build_s": build_s, "embed_s": timing["embed_s"], "chunks": len(texts),
            "vectors": int(store.index.ntotal), "runtime": _runtime(embedder), "batch_size": batch_size,
            "chunk_tokens": _token_stats(embedder, texts), "shape": _model_shape(model)}


def child_matmul() -> dict[str, Any]:
    """GFLOP/s of a square matmul on both cores: numpy float32 (the practical fp32 ceiling), and torch
    in float32 and bfloat16 (what the encoder computes in)."""
    import numpy as np
    import torch

    n = 2048
    out: dict[str, Any] = {"n": n, "torch_threads": torch.get_num_threads()}

    def rate(fn: Any) -> float:
        fn()
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return 2 * n**3 / best / 1e9

    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    out["numpy_fp32_gflops"] = rate(lambda: a @ b)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out["torch_fp32_gflops"] = rate(lambda: ta @ tb)
    ha, hb = ta.bfloat16(), tb.bfloat16()
    out["torch_bf16_gflops"] = rate(lambda: ha @ hb)
    return out


# --- the parent ----------------------------------------------------------------------------------


def make_corpus(folder: Path, fraction: float) -> dict[str, Any]:
    """The shipped corpus (report, manifest, profiles) in ``folder``; with ``fraction`` < 1 the report
    is cut after that share of its characters, at the next paragraph break."""
    shutil.copytree(ROOT / "corpus", folder)
    text = REPORT.read_text(encoding="utf-8")
    if fraction < 1:
        cut = text.find("\n\n", int(len(text) * fraction))
        text = text[: cut if cut > 0 else len(text)] + "\n"
        (folder / REPORT.name).write_text(text, encoding="utf-8")
    return {"chars": len(text), "of_report_chars": len(REPORT.read_text(encoding="utf-8")), "fraction": fraction}


def cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", cpuinfo, re.M)]
    flags = re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.M)
    family = re.search(r"^cpu family\s*:\s*(\d+)$", cpuinfo, re.M)
    info["model"] = model.group(1).strip() if model else ""
    info["family"] = int(family.group(1)) if family else None
    info["mhz"] = max(mhz) if mhz else None
    flag_set = set(flags.group(1).split()) if flags else set()
    info["avx512f"] = "avx512f" in flag_set
    info["avx512_bf16"] = "avx512_bf16" in flag_set
    return info


def _child_json(args: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], float, float]:
    done = run_child([PYTHON, __file__, *args], env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"child {' '.join(args[:2])} failed (exit {done.returncode}):\n{tail}")
    return json.loads(lines[-1]), done.seconds, done.peak_mb


def _flops(tokens: dict[str, float], shape: dict[str, float]) -> float:
    """Forward-pass FLOPs over texts with these token statistics (see the module docstring)."""
    return (2 * shape["non_embedding_params"] * tokens["tokens"]
            + 4 * shape["layers"] * shape["hidden"] * tokens["tokens_sq"])


def run(quick: bool) -> Section:
    section = Section(SECTION)
    started = time.perf_counter()
    repeats = 1 if quick else 2
    fraction = PREFIX_FRACTION if quick else 1.0
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # other processes share these cores
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-build-"))
    try:
        corpus_dir = work / "corpus"
        section.details["corpus"] = make_corpus(corpus_dir, fraction)
        matmul, _, _ = _child_json(["--child", "matmul"])
        results: dict[str, list[dict[str, Any]]] = {p: [] for p in PIPELINES}
        for r in range(repeats):
            for pipeline in PIPELINES:  # alternating, so both meet the same machine state
                args = ["--child", pipeline, "--corpus", str(corpus_dir), "--work", str(work / f"{pipeline}-{r}")]
                data, wall, peak = _child_json(args)
                data.update(child_wall_s=wall, peak_mb=peak)
                results[pipeline].append(data)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    cpu = cpu_info()
    ghz = (cpu.get("mhz") or 0) / 1000
    cores = int(cpu.get("cores") or 1)
    lanes = 16 if cpu.get("avx512f") else 8  # fp32 lanes of one FMA: AVX-512 or AVX2
    native_bf16 = bool(cpu.get("avx512_bf16"))
    peak_gflops = cores * ghz * FMA_PIPES * lanes * 2
    bf16_note = (f"torch bf16 matmul {matmul['torch_bf16_gflops']:.0f} GFLOP/s (AVX512_BF16 dot products can in "
                 "principle double the fp32 rate)" if native_bf16 else
                 "this CPU has no native bf16, so torch computes in float32")
    section.details.update(
        mode="quick" if quick else "full", load_average_at_start=load_at_start, repeats=repeats, cpu=cpu, matmul=matmul,
        assumptions={
            "fp32_peak": f"{cores} cores x {ghz:.2f} GHz (/proc/cpuinfo 'cpu MHz', the nominal clock seen by the VM; "
                         f"boost unknown) x {FMA_PIPES} FMA pipes x {lanes} fp32 lanes x 2 FLOP = "
                         f"{peak_gflops:.0f} GFLOP/s",
            "practical_ceiling": f"numpy float32 {matmul['n']}x{matmul['n']} matmul on all cores: "
                                 f"{matmul['numpy_fp32_gflops']:.0f} GFLOP/s "
                                 f"({matmul['numpy_fp32_gflops'] / peak_gflops:.0%} of the assumed peak); {bf16_note}",
            "clock_from_matmul": f"numpy fp32 matmul rate / ({cores} cores x {2 * FMA_PIPES * lanes} FLOP/cycle)"
                                 " = "
                                 f"{matmul['numpy_fp32_gflops'] / (cores * 2 * FMA_PIPES * lanes):.2f} GHz: "
                                 "the clock at which that matmul would fill both FMA pipes every cycle (a lower "
                                 "bound on the clock, not a measurement of it; other processes share these cores)",
            "flops_per_text": "2 x non-embedding parameters x tokens + 4 x layers x tokens^2 x hidden (QK^T and AV); "
                              "tokens with the model's tokenizer, 'document' prompt included, padding not counted, "
                              "layer norms, softmax and activations not counted",
            "prefix": f"quick mode: the first {fraction:.0%} of the report's characters (cut at a paragraph break)"
                      if fraction < 1 else "the whole report",
        },
        runs=results,
    )
    scope = f"first {fraction:.0%} of the report" if fraction < 1 else "whole report"
    shape = results["langchain"][0]["shape"]  # one encoder; the tutorial's child loads it in torch, ours needn't
    for pipeline in PIPELINES:
        runs = results[pipeline]
        first = runs[0]
        build = [d["build_s"] for d in runs]
        embed = [d["embed_s"] for d in runs]
        chunks = first["chunks"]
        flops = _flops(first["chunk_tokens"], shape)
        texts = first["chunk_tokens"]["texts"]
        if pipeline.startswith("gcm-qa"):
            flops += _flops(first["sentence_tokens"], shape)
            texts += first["sentence_tokens"]["texts"]
            embedded = first["embedded_chunks"] + first["embedded_sentences"]
            what = (f"{first['embedded_chunks']} chunks + {first['embedded_sentences']} sentences embedded "
                    f"({first['chunks']} chunks)")
        else:
            embedded = first["chunks"]
            what = f"{first['chunks']} chunks embedded (1000/200 characters)"
        note = f"{scope}; {what}; {first['runtime']}, batch {first['batch_size']}"
        section.add(f"{pipeline}: build seconds", median(build), "s", note=note, runs=build)
        section.add(f"{pipeline}: seconds inside the encoder", median(embed), "s", runs=embed)
        section.add(f"{pipeline}: texts embedded", embedded, "texts", note=what)
        section.add(f"{pipeline}: chunks/s", chunks / median(build), "chunks/s", runs=[chunks / b for b in build])
        section.add(f"{pipeline}: embedded texts/s", embedded / median(build), "texts/s",
                    runs=[embedded / b for b in build])
        peaks = [d["peak_mb"] for d in runs]
        section.add(f"{pipeline}: peak memory", median(peaks), "MB", note="child process, model included", runs=peaks)
        per_chunk = _flops(first["chunk_tokens"], shape) / first["chunk_tokens"]["texts"]
        limit_peak = chunks / (flops / (peak_gflops * 1e9))
        limit_matmul = chunks / (flops / (matmul["numpy_fp32_gflops"] * 1e9))
        measured = chunks / median(build)
        mean_tokens = first["chunk_tokens"]["tokens"] / first["chunk_tokens"]["texts"]
        section.add(f"{pipeline}: GFLOP per chunk", per_chunk / 1e9, "GFLOP",
                    note=f"mean {mean_tokens:.0f} tokens per chunk; "
                         f"pipeline total {flops / 1e12:.2f} TFLOP over {texts} texts")
        section.add(f"{pipeline}: chunks/s limit at fp32 peak", limit_peak, "chunks/s",
                    note=f"{limit_peak / measured:.1f}x the measured chunks/s")
        section.add(f"{pipeline}: chunks/s limit at measured matmul rate", limit_matmul, "chunks/s",
                    note=f"{limit_matmul / measured:.1f}x the measured chunks/s")
        if native_bf16 and ("bfloat16" in first["runtime"] or "bf16" in first["runtime"]):
            limit_bf16 = chunks / (flops / (matmul["torch_bf16_gflops"] * 1e9))
            section.add(f"{pipeline}: chunks/s limit at measured bf16 matmul rate", limit_bf16, "chunks/s",
                        note=f"{limit_bf16 / measured:.1f}x the measured chunks/s (torch bf16 matmul, the encoder's "
                             "dtype)")
        section.add(f"{pipeline}: achieved share of fp32 peak", flops / median(embed) / (peak_gflops * 1e9), "ratio",
                    note=f"{flops / median(embed) / 1e9:.0f} GFLOP/s inside the encoder; "
                         f"{flops / median(build) / 1e9:.0f} GFLOP/s over the whole build")
    ours, before, theirs = (section_value(section, f"{p}: chunks/s") for p in PIPELINES)
    texts_ours, _, texts_theirs = (section_value(section, f"{p}: embedded texts/s") for p in PIPELINES)
    section.add("chunks/s, gcm-qa / LangChain", ours / theirs, "x", ">= 1", ours / theirs >= 1,
                note="per chunk of each pipeline's own chunking; gcm-qa also embeds every sentence")
    section.add("embedded texts/s, gcm-qa / LangChain", texts_ours / texts_theirs, "x",
                note="per text through the encoder, chunks and sentences alike")
    section.add("build, gcm-qa / gcm-qa through ONNX Runtime", ours / before, "x",
                note="chunks/s, as configured against build_runtime 'onnxruntime': after and before, same run")
    section.details["chart"] = {"title": "Index build of the report (chunks/s)", "unit": "chunks/s",
                                "labels": ["gcm-qa", "gcm-qa, ONNX Runtime", "gcm-qa texts/s", "LangChain"],
                                "values": [ours, before, texts_ours, theirs]}
    section.details["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]  # others share the CPU
    section.seconds = time.perf_counter() - started
    return section


def section_value(section: Section, name: str) -> float:
    return next(r.value for r in section.rows if r.name == name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", choices=[*PIPELINES, "matmul"], help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "gcm-qa":
        print(json.dumps(child_gcm(args.corpus, args.work)))
    elif args.child == "gcm-qa-onnxruntime":
        print(json.dumps(child_gcm(args.corpus, args.work, "onnxruntime")))
    elif args.child == "langchain":
        print(json.dumps(child_langchain(args.corpus)))
    elif args.child == "matmul":
        print(json.dumps(child_matmul()))
    else:
        result = run(args.quick)
        print_rows(result.rows)
        print(json.dumps(result.details, indent=1))
        print(f"({result.seconds:.0f} s in all)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
