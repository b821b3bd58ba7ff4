"""Bulk encoding of the report's passages, the part of an index build that costs: the ONNX export
compiled by OpenVINO (a build's runtime: bfloat16 where the CPU has it natively) and run by ONNX
Runtime in float32 (the questions' runtime, and builds' before OpenVINO), batches sorted by length,
against sentence-transformers in torch (bfloat16 where the CPU has it natively, and float32), and
ONNX Runtime with int8 weights (onnxruntime's dynamic quantiser), on the same passages in the same
run, all with the configured batch size, with each one's cosine to sentence-transformers' float32.
OpenVINO is compiled before the timing (a build pays it once, about 2.5 s; ``index build`` includes it).

int8 would be used for bulk encoding only if it were faster than the configured path and the
tuning set's hit@5 stayed within 0.01; this section measures the first condition (and the cosine,
which bounds the second). The int8 model is made once (about 2.5 minutes) into the model cache's
``onnx-int8`` folder; ``--quick`` measures it only when it is already there.

    .venv/bin/python benchmarks/bench_encoding.py [--quick]
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import ROOT, Section, main, timed

from gcm_qa import models
from gcm_qa.embedder import load_embedder
from gcm_qa.engine import Engine
from gcm_qa.onnx_encoder import MODEL_FILE, STAMP_FILE, OnnxEncoder
from gcm_qa.settings import EmbeddingSettings, Settings


def int8_model(onnx_dir: Path, make: bool) -> Path | None:
    """The int8 copy of the ONNX export (made here when ``make``)."""
    target = onnx_dir.parent / "onnx-int8"
    if (target / MODEL_FILE).is_file():
        _copy_tokenizer(onnx_dir, target)  # one made before the export kept SentencePiece's model
        return target
    if not make:
        return None
    from onnxruntime.quantization import QuantType, quantize_dynamic

    work = Path(tempfile.mkdtemp(prefix=".onnx-int8-", dir=onnx_dir.parent))
    _copy_tokenizer(onnx_dir, work)
    quantize_dynamic(str(onnx_dir / MODEL_FILE), str(work / MODEL_FILE), weight_type=QuantType.QInt8,
                     per_channel=True, use_external_data_format=True)
    work.rename(target)
    return target


def _copy_tokenizer(onnx_dir: Path, target: Path) -> None:
    """Everything of the export but the weights (config, tokenizer.json, SentencePiece's model): what
    OnnxEncoder reads besides the model file."""
    for path in onnx_dir.iterdir():
        if (path.is_file() and not path.name.startswith(Path(MODEL_FILE).stem) and path.name != STAMP_FILE
                and not (target / path.name).exists()):
            shutil.copy(path, target / path.name)


def passages(n: int) -> list[str]:
    """The first ``n`` of the report's passages as the index embeds them (its own chunker)."""
    work = Path(tempfile.mkdtemp(prefix="gcm-qa-bench-enc-"))
    try:
        engine = Engine(Settings.model_validate({"paths": {
            "corpus_dir": ROOT / "corpus", "index_dir": work / "index", "vectors_dir": ROOT / "index" / "vectors"}}))
        engine.build()
        return [c.embed_text() for c in engine.index.chunks[:n]]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(quick: bool) -> Section:
    section = Section("bulk encoding")
    settings = Settings()
    cache = settings.paths.cache_dir
    gemma = models.PACKAGED["embeddinggemma-300m"]
    onnx_dir = models.onnx_folder(gemma, cache)
    texts = passages(32 if quick else 96)
    torch_auto = load_embedder(EmbeddingSettings(backend="sentence-transformers"), cache)
    fp32 = load_embedder(EmbeddingSettings(backend="sentence-transformers", dtype="float32"), cache)
    batch = settings.embedding.batch_size
    paths: dict[str, Callable[[list[str]], np.ndarray]] = {}
    if onnx_dir is not None:
        ort = OnnxEncoder(onnx_dir, settings.embedding.threads, openvino_min_texts=1,
                          precision=settings.embedding.dtype)
        ort.graph(1)  # OpenVINO compiles here, outside the timing
        assert ort.openvino is not None, ort.openvino_error
        paths[f"OpenVINO, {ort.openvino.precision} (builds)"] = lambda t: ort.encode(t, "document", batch_size=batch,
                                                                                      build=True)
        paths["ONNX Runtime, float32 (questions)"] = lambda t: ort.encode(t, "document", batch_size=batch)
    dtype = str(getattr(torch_auto, "dtype", "")).removeprefix("torch.")
    if dtype != "float32":
        paths[f"sentence-transformers, {dtype}"] = torch_auto.encode_documents
    paths["sentence-transformers, float32"] = fp32.encode_documents
    if onnx_dir is not None:
        int8_dir = int8_model(onnx_dir, make=not quick)
        if int8_dir is not None:
            ort8 = OnnxEncoder(int8_dir)
            paths["ONNX Runtime, int8 weights"] = lambda t: ort8.encode(t, "document", batch_size=batch)
    for encode in paths.values():
        encode(texts[:4])  # warm-up
    reference = fp32.encode_documents(texts)
    speeds: dict[str, float] = {}
    for name, encode in paths.items():
        seconds, vectors = timed(lambda encode=encode: encode(texts))
        speeds[name] = len(texts) / seconds
        cosine = np.sum(np.asarray(vectors) * reference, axis=1)
        section.add(f"passages/s, {name}", speeds[name], "/s", note=f"{len(texts)} report passages")
        section.add(f"least cosine to float32, {name}", float(cosine.min()), "", note=f"median {np.median(cosine):.4f}")
    base_name = next(iter(paths))
    for name, speed in speeds.items():
        section.add(f"speed vs {base_name.split(',')[0]}, {name}", speed / speeds[base_name], "x")
    section.details = {"passages": len(texts), "batch_size": batch,
                       "int8": "measured" if "ONNX Runtime, int8 weights" in paths else
                       "not measured (quick mode makes no int8 model; run without --quick once)",
                       "measured at": time.strftime("%H:%M:%S")}
    return section


if __name__ == "__main__":
    main(run)
