"""A sentence-transformers encoder run by ONNX Runtime and a plain tokenizer, for questions and documents.

A one-off ``gcm-qa ask`` spent some 11 of its 13 seconds importing torch, transformers and
sentence-transformers and loading the model through them (cProfile, EmbeddingGemma, 2 cores), to
embed one question. Embedding a text needs a tokenizer and the encoder's forward pass, nothing
else, so the whole sentence-transformers pipeline (transformer, mean pooling, dense layers,
normalisation) is exported once, at install time, into one ONNX graph with ``torch.onnx.export``,
and questions are embedded by ONNX Runtime in float32, which starts in a fraction of a second. A
build's documents, thousands of texts, go through OpenVINO where it pays (``OpenVinoGraph``): it
compiles the same graph in seconds and computes in bfloat16 where the CPU does so natively
(``benchmarks/bench_encoding.py``).

The tokenizer is the model's SentencePiece model where it has one and it gives exactly the ids of
its ``tokenizer.json`` (checked at export; EmbeddingGemma's loads in 0.1 s where ``tokenizers`` takes
1.2 to 2.5 s to parse the 33 MB JSON, the longest step of a cold ``ask``), else ``tokenizers``.
The export is checked against sentence-transformers on hand-made English and Spanish questions of
mixed lengths, in one padded batch, and refused below ``MIN_COSINE``. ``optimum`` is deliberately
not used: it pins transformers < 5 and huggingface-hub < 1, which break sentence-transformers and gradio.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ONNX_DIR = "onnx"  # inside the model's folder
MODEL_FILE = "model.onnx"
STAMP_FILE = "export.json"
OUTPUT = "sentence_vector"  # not "embedding": the graph already has a node of that name
SENTENCEPIECE_FILE = "tokenizer.model"
# What an export folder holds; an older export is made again by the next install.
EXPORT_FORMAT = 2  # 2: the SentencePiece tokenizer beside tokenizer.json
MIN_COSINE = 0.999
# The export's own check: questions as users ask them, in both languages, short and long, encoded in
# one batch so that padding and the attention mask are exercised.
CHECK_TEXTS = (
    "How many States submitted voluntary reports?",
    "¿Qué países informaron sobre la regularización de migrantes venezolanos?",
    "Which objective deals with detention",
    "¿Cómo protegen los Estados a las personas migrantes en situación de vulnerabilidad durante la pandemia "
    "de COVID-19, y qué medidas tomaron para garantizar su acceso a la salud, la educación y la vivienda?",
    "remittances",
    "What do civil society organisations recommend about access to justice for migrant women and children "
    "who have been victims of trafficking or smuggling in the Caribbean and Central America?",
)
# Texts a tokenizer can disagree on: runs of spaces, tabs and line breaks, accents, ligatures,
# non-breaking and zero-width spaces, figures, scripts and emoji, leading and trailing spaces.
TOKENIZER_CHECK_TEXTS = (
    "Objective 16 -  Empower migrants\tand societies\n\nto realize full inclusion ",
    " Migración, niñez y adolescencia: ¿qué hicieron Perú, Panamá y Haití en 2020–2021?",
    "Efﬁcient  ﬁnancing\u00a0of 1,234.56 USD (73/195; 59.5%) \u200bnow",
    "移民 🌎🇲🇽 «citas» — “quotes” … ‘apostrophes’ l'État",
    "\n\n   ",
    "a" * 300,
)


class ExportError(Exception):
    """The export failed or does not match sentence-transformers; queries then use sentence-transformers."""


def exported(folder: Path, weights: str) -> Path | None:
    """The ONNX folder of the model in ``folder`` when it was exported from these very weights
    (``weights``: what identifies them, the install stamp of :mod:`gcm_qa.models`) and passed its
    check; None otherwise (not exported yet, or the weights changed since)."""
    onnx = folder / ONNX_DIR
    try:
        record = json.loads((onnx / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not weights or record.get("weights") != weights or not (onnx / MODEL_FILE).is_file():
        return None
    if record.get("format") != EXPORT_FORMAT:
        return None
    return onnx


def export(folder: Path, weights: str, echo: Callable[[str], None] = lambda _m: None) -> Path:
    """Export the sentence-transformers model in ``folder`` to ``folder/onnx`` and check it; a no-op
    when already exported from these weights. Needs torch, onnx and onnxscript (install time only)."""
    done = exported(folder, weights)
    if done is not None:
        return done
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    echo(f"exporting {folder.name}'s encoder to ONNX for fast queries (once; about a minute)")
    # eager attention: the exporter traces plain matrix products instead of a fused kernel
    st = SentenceTransformer(str(folder), device="cpu",
                             model_kwargs={"dtype": torch.float32, "attn_implementation": "eager"})
    st.eval()

    class Pipeline(torch.nn.Module):
        """Every module of the sentence-transformers model, from token ids to the normalised vector."""

        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            return self.st({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]

    example = st.tokenizer(list(CHECK_TEXTS[:2]), padding=True, return_tensors="pt")
    work = Path(tempfile.mkdtemp(prefix=".onnx-", dir=folder))
    try:
        # the exporter talks a lot (progress on stdout, warnings on its shape hints): one line says what happened
        with torch.no_grad(), _quiet():
            torch.onnx.export(
                Pipeline().eval(), (example["input_ids"], example["attention_mask"]), str(work / MODEL_FILE),
                input_names=["input_ids", "attention_mask"], output_names=[OUTPUT],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              OUTPUT: {0: "batch"}},
                dynamo=True, verbose=False,
            )
        prompts = st.prompts or {}
        config = {"prompts": {k: v for k, v in prompts.items() if k in ("query", "document")},
                  "max_tokens": int(st.max_seq_length or 512), "dimension": int(st.get_embedding_dimension())}
        shutil.copy(folder / "tokenizer.json", work / "tokenizer.json")
        config["sentencepiece"] = _sentencepiece_twin(folder, work, [*CHECK_TEXTS, *TOKENIZER_CHECK_TEXTS],
                                                      list(config["prompts"].values()), config["max_tokens"])
        (work / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        reference = st.encode(list(CHECK_TEXTS), prompt_name="query" if "query" in prompts else None,
                              normalize_embeddings=True, convert_to_numpy=True)
        ours = OnnxEncoder(work, threads=0).encode(CHECK_TEXTS, "query", batch_size=len(CHECK_TEXTS))
        cosine = float(np.min(np.sum(reference * ours, axis=1)))
        if cosine < MIN_COSINE:
            raise ExportError(f"the ONNX export of {folder.name} gives vectors unlike sentence-transformers' "
                              f"(least cosine {cosine:.4f} < {MIN_COSINE})")
        record = {"weights": weights, "format": EXPORT_FORMAT, "min_cosine": round(cosine, 6),
                  "torch": torch.__version__, "seconds": round(time.perf_counter() - started, 1)}
        (work / STAMP_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
        target = folder / ONNX_DIR
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    echo(f"exported to {target} (least cosine to sentence-transformers {cosine:.5f}, "
         f"{time.perf_counter() - started:.0f} s)")
    return target


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        exporter_log.setLevel(level)


def _sentencepiece_twin(folder: Path, work: Path, texts: Sequence[str], prompts: Sequence[str],
                       max_tokens: int) -> dict[str, Any] | None:
    """Copy the model's SentencePiece model into ``work`` when it tokenizes exactly as its
    ``tokenizer.json`` (special tokens around the text included) on ``texts``, alone and after each
    prompt; what goes around the text is recorded. None when there is no such model or it differs."""
    if not (folder / SENTENCEPIECE_FILE).is_file():
        return None
    try:
        import sentencepiece
        from tokenizers import Tokenizer
    except ImportError:
        return None
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.no_padding()
    reference.enable_truncation(max_tokens)
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(folder / SENTENCEPIECE_FILE))
    probe = "probe"
    full, core = reference.encode(probe).ids, pieces.encode(probe)
    starts = [k for k in range(len(full) - len(core) + 1) if full[k : k + len(core)] == core]
    if not starts:
        return None
    prefix, suffix = full[: starts[0]], full[starts[0] + len(core):]
    twin = {"file": SENTENCEPIECE_FILE, "prefix": prefix, "suffix": suffix}
    every = [*texts, *(p + t for p in prompts for t in texts)]
    if [e.ids for e in reference.encode_batch(every)] != _pieces_ids(pieces, twin, every, max_tokens):
        return None
    shutil.copy(folder / SENTENCEPIECE_FILE, work / SENTENCEPIECE_FILE)
    return twin


def _pieces_ids(pieces: Any, twin: dict[str, Any], texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """Token ids as ``tokenizers`` gives them: special tokens around, truncated to ``max_tokens`` in all."""
    prefix, suffix = list(twin["prefix"]), list(twin["suffix"])
    room = max_tokens - len(prefix) - len(suffix)
    return [prefix + ids[:room] + suffix for ids in pieces.encode(list(texts))]


class OnnxEncoder:
    """An exported encoder: SentencePiece or ``tokenizers`` for the text, ONNX Runtime for the forward pass.

    The tokenizer loads on a thread of its own while ONNX Runtime builds its session; both release
    the GIL."""

    def __init__(self, onnx_dir: Path, threads: int = 0, *, openvino_min_texts: int | None = None,
                 openvino_batch_tokens: int = 1024, precision: str = "auto") -> None:
        self.model_file = onnx_dir / MODEL_FILE
        self.threads = threads
        self.openvino_min_texts = openvino_min_texts  # None: ONNX Runtime for everything
        self.openvino_batch_tokens = openvino_batch_tokens
        self.precision = precision
        self.openvino: OpenVinoGraph | None = None
        self.openvino_error: str = ""  # why OpenVINO could not compile the graph, if it could not
        self._lock = threading.Lock()  # one session made, one graph compiled, whichever threads ask

        config = json.loads((onnx_dir / "config.json").read_text(encoding="utf-8"))
        self.prompts: dict[str, str] = config["prompts"]
        self.max_tokens = int(config["max_tokens"])
        self.dimension = int(config["dimension"])
        self._twin: dict[str, Any] | None = config.get("sentencepiece")
        loaded: dict[str, Any] = {}

        def load_tokenizer() -> None:
            try:
                loaded["tokenizer"] = self._load_tokenizer(onnx_dir)
            except Exception as exc:  # re-raised on the calling thread
                loaded["error"] = exc

        thread = threading.Thread(target=load_tokenizer, name="gcm-qa-tokenizer", daemon=True)
        thread.start()
        self.session: Any = self._session()
        thread.join()
        if "error" in loaded:
            raise loaded["error"]
        self.tokenizer = loaded["tokenizer"]

    def _session(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the exporter's shape hints are warnings, not the user's business
        return ort.InferenceSession(str(self.model_file), options, providers=["CPUExecutionProvider"])

    def _load_tokenizer(self, onnx_dir: Path) -> Any:
        if self._twin is not None:
            import sentencepiece

            return sentencepiece.SentencePieceProcessor(model_file=str(onnx_dir / self._twin["file"]))
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(onnx_dir / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.enable_truncation(self.max_tokens)
        return tokenizer

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The ids the encoder sees for each text (special tokens included, truncated to its length)."""
        if self._twin is not None:
            return _pieces_ids(self.tokenizer, self._twin, texts, self.max_tokens)
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], prompt: str | None, *, batch_size: int,
               progress: bool = False, build: bool = False) -> np.ndarray:
        """L2-normalised float32 vectors; ``prompt`` names one of the model's prompts ('query',
        'document'); ``batch_size``: texts per forward pass (the setting ``embedding.batch_size``);
        ``progress`` shows a bar over the batches (a build embeds thousands of texts); ``build`` lets
        a build's texts go through OpenVINO (see :meth:`graph`), in batches of about
        ``openvino_batch_tokens`` tokens rather than ``batch_size`` texts."""
        prefix = self.prompts.get(prompt, "") if prompt else ""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        graph = self.graph(len(texts)) if build else None
        run, tokens = (graph.run, self.openvino_batch_tokens) if graph else (self._run_onnxruntime, None)
        encodings = self.token_ids([prefix + t for t in texts])
        lengths = [len(e) for e in encodings]
        batches: Iterable[list[int]] = batches_by_length(lengths, batch_size, tokens)
        if progress:  # tqdm is imported only for a build; a question's start-up stays lean
            from tqdm import tqdm

            batches = tqdm(batches, desc="Embedding", unit="batch", leave=False)
        for rows in batches:
            width = lengths[rows[-1]]
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i])
                ids[r, :n] = encodings[i]
                mask[r, :n] = 1
            out[rows] = run(ids, mask)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _run_onnxruntime(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self._lock:
            if self.session is None:  # released while OpenVINO compiled; a question needs it again
                self.session = self._session()
            session = self.session
        (vectors,) = session.run([OUTPUT], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(vectors)

    def graph(self, count: int) -> OpenVinoGraph | None:
        """OpenVINO's graph to run a build's ``count`` texts: once it is compiled, or when there are
        at least ``openvino_min_texts`` of them to repay compiling it (2.5 s); None leaves them to ONNX
        Runtime. A graph OpenVINO cannot compile leaves ONNX Runtime to do the work, with one warning.

        ONNX Runtime's session is let go before OpenVINO compiles, so that a build holds one copy of
        the model (1.2 GB in float32 for EmbeddingGemma), not two; a later question makes it again."""
        with self._lock:
            wanted = self.openvino_min_texts is not None and count >= self.openvino_min_texts
            if self.openvino is None and not self.openvino_error and wanted:
                self.session = None
                try:
                    self.openvino = OpenVinoGraph(self.model_file, self.threads, self.precision)
                except Exception as exc:  # any failure of a third-party compiler: the build goes on
                    self.openvino_error = _reason(exc)
                    warnings.warn(f"OpenVINO cannot compile {self.model_file} ({self.openvino_error}); "
                                  "embedding with ONNX Runtime", RuntimeWarning, stacklevel=3)
            return self.openvino


def batches_by_length(lengths: Sequence[int], batch_size: int, tokens: int | None = None) -> list[list[int]]:
    """Indices of texts in batches of like lengths (shortest first), so that padding stays small:
    ``batch_size`` texts each, or, with ``tokens``, as many as fit in that many tokens counted at
    the batch's longest text (never fewer than one). A fixed count gives short sentences small
    matrix products, which OpenVINO runs at a lower rate than long ones."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if tokens is None:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[i] <= tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def _reason(exc: Exception) -> str:
    """OpenVINO's message without its C++ call stack ('Exception from src/...' lines)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    said = [line for line in lines if line and not line.startswith("Exception from ")]
    return said[0] if said else type(exc).__name__


class OpenVinoGraph:
    """The same exported graph, compiled by OpenVINO for a build's thousands of texts.

    ONNX Runtime's CPU kernels compute in float32 only; OpenVINO computes matrix products in
    bfloat16 where the CPU does so natively (AVX512-BF16, AMX), accumulating in float32. On a Zen 4
    it built the whole report in 79 s against ONNX Runtime's 153 s, every vector within cosine
    0.9994 of float32's (``benchmarks/bench_build.py``). Compiling takes some 2.5 s, too long for a
    question, and its vectors differ from float32's in the fourth decimal, so questions stay with
    ONNX Runtime: a question gets the same vector in every process.

    One infer request, used by one build at a time (builds hold the index's lock)."""

    def __init__(self, model_file: Path, threads: int, precision: str) -> None:
        import openvino

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}  # one request at a time, all threads on it
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision != "auto":  # else OpenVINO's own choice: bfloat16 only where the CPU computes it
            config["INFERENCE_PRECISION_HINT"] = {"float32": "f32", "bfloat16": "bf16"}[precision]
        self.compiled = openvino.Core().compile_model(str(model_file), "CPU", config)
        self.precision: str = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()  # f32, bf16
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.output(OUTPUT)

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        result = self.request.infer({"input_ids": ids, "attention_mask": mask})
        return np.array(result[self.output], dtype=np.float32)  # a copy: the request reuses its buffer
